// delayhw co-simulation top: streams a stimulus file into the core and its outputs into a
// result file, with no Python in the cycle loop. The clock is generated here (Verilator
// builds with --timing); Python (cocotb) only waits for `done` and reads the counters, the
// only signals made visible to VPI.
//
// Plusargs:
//   +stim=FILE   stimulus, one word per line: "T HEX", T = 0 config write, 1 input event
//   +out=FILE    output events, one hex word per line, in order
//   +ready=N     output ready probability N/256 (LFSR; default 256 = always ready)
//   +seed=N      LFSR seed (default 1)
//   +dump=FILE   (Icarus) dump a trace of the whole run; Verilator traces through cocotb
// Reset is held for the first 4 cycles. `done` rises once the stimulus is exhausted and one
// SAMPLE output event has arrived for every SAMPLE input event sent.
//
// Every width and code of the core's words comes in as a parameter from the one wire-format
// table (delayhw.gateware.wire.sim_parameters), the clock period from delayhw.sim.clock
// (both passed by sim/runner.py's top_parameters); the defaults below only make the file
// parse on its own and are never used by a build.
`timescale 1ns/1ps
module cosim_top #(
    parameter IN_W = 1,         // input word (wire.INPUT)
    parameter CFG_W = 1,        // configuration word (wire.CONFIG)
    parameter OUT_W = 1,        // output word (wire.output(score_bits))
    parameter STATUS_W = 1,     // status word (wire.STATUS)
    parameter KIND_W = 1,       // the kind field, bits [KIND_W-1:0] of input and output words
    parameter IN_SAMPLE = 0,    // InKind.SAMPLE
    parameter OUT_SAMPLE = 0,   // OutKind.SAMPLE
    parameter CLOCK_PERIOD_NS = 0   // delayhw.sim.clock.CLOCK_PERIOD_NS
) (done, cycles, out_count, status);
    output reg         done      /*verilator public_flat_rd*/;
    output reg  [63:0] cycles    /*verilator public_flat_rd*/;   // cycles since reset
    output reg  [31:0] out_count /*verilator public_flat_rd*/;   // output events written
    output wire [STATUS_W-1:0] status /*verilator public_flat_rd*/;
    localparam PAYLOAD_W = CFG_W > IN_W ? CFG_W : IN_W;   // a stimulus word of either kind

    reg clk = 0;
    initial if (CLOCK_PERIOD_NS < 2) $fatal(1, "cosim_top: CLOCK_PERIOD_NS not set");
    always #(CLOCK_PERIOD_NS / 2) clk = ~clk;
    localparam TAG_CONFIG = 0, TAG_INPUT = 1, TAG_END = 3;

    reg  rst;
    reg  [3:0] reset_count;
    reg  [1:0] tag;
    reg  [PAYLOAD_W-1:0] payload;
    reg  [1:0] t_tmp;
    reg  [PAYLOAD_W-1:0] p_tmp;
    reg  [31:0] sent_samples, got_samples;
    reg  [8*4096-1:0] stim_path, out_path, dump_path;
    integer fin, fout, code, ready_prob, seed;
    reg  [15:0] lfsr;
    reg  out_ready;

    wire in_ready, cfg_ready, out_valid;
    wire [OUT_W-1:0] out_payload;

    delayhw_core core (
        .clk(clk), .rst(rst),
        .inputs__payload(payload[IN_W-1:0]),
        .inputs__valid(!rst && tag == TAG_INPUT),
        .inputs__ready(in_ready),
        .config__payload(payload[CFG_W-1:0]),
        .config__valid(!rst && tag == TAG_CONFIG),
        .config__ready(cfg_ready),
        .outputs__payload(out_payload),
        .outputs__valid(out_valid),
        .outputs__ready(out_ready),
        .status(status)
    );

    task fetch;     // load the next stimulus word into tag/payload (TAG_END at end of file)
        begin
            code = $fscanf(fin, "%h %h\n", t_tmp, p_tmp);
            if (code == 2) begin
                tag <= t_tmp;
                payload <= p_tmp;
            end else begin
                tag <= TAG_END;
                payload <= 0;
            end
        end
    endtask

    initial begin
        if (!$value$plusargs("stim=%s", stim_path)) $fatal(1, "cosim_top: +stim=FILE missing");
        if (!$value$plusargs("out=%s", out_path)) $fatal(1, "cosim_top: +out=FILE missing");
        if (!$value$plusargs("ready=%d", ready_prob)) ready_prob = 256;
        if (!$value$plusargs("seed=%d", seed)) seed = 1;
        fin = $fopen(stim_path, "r");
        if (fin == 0) $fatal(1, "cosim_top: cannot open stimulus file");
        fout = $fopen(out_path, "w");
        if (fout == 0) $fatal(1, "cosim_top: cannot open output file");
        rst = 1;
        reset_count = 0;
        tag = TAG_END;
        payload = 0;
        done = 0;
        cycles = 0;
        out_count = 0;
        sent_samples = 0;
        got_samples = 0;
        lfsr = seed[15:0] | 16'h1;
        out_ready = (ready_prob >= 256);
`ifndef VERILATOR
        if ($value$plusargs("dump=%s", dump_path)) begin
            $dumpfile(dump_path);
            $dumpvars(0, cosim_top);
        end
`endif
    end

    always @(posedge clk) begin
        if (rst) begin
            reset_count <= reset_count + 1;
            if (reset_count == 3) begin
                rst <= 0;
                fetch;
            end
        end else if (!done) begin
            cycles <= cycles + 1;
            if ((tag == TAG_INPUT && in_ready) || (tag == TAG_CONFIG && cfg_ready)) begin
                if (tag == TAG_INPUT && payload[KIND_W-1:0] == IN_SAMPLE)
                    sent_samples <= sent_samples + 1;
                fetch;
            end
            if (out_valid && out_ready) begin
                $fwrite(fout, "%h\n", out_payload);
                out_count <= out_count + 1;
                if (out_payload[KIND_W-1:0] == OUT_SAMPLE) begin
                    got_samples <= got_samples + 1;
                    $fflush(fout);
                end
            end
            lfsr <= {lfsr[14:0], lfsr[15] ^ lfsr[13] ^ lfsr[12] ^ lfsr[10]};
            out_ready <= (ready_prob >= 256) || ({24'd0, lfsr[7:0]} < ready_prob);
            if (tag == TAG_END && got_samples == sent_samples) begin
                done <= 1;
                $fclose(fout);
                $fclose(fin);
            end
        end
    end
endmodule
