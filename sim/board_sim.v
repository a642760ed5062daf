// delayhw simulated board: the board top (core + UART host link) with a UART bridge to files,
// so a host program talks to it like to a serial port, with no Python in the cycle loop.
//
// Plusargs:
//   +rx=FILE    bytes from the host, appended by the host while the simulation runs; read
//               with $fgetc and sent on the board's rx pin at DIVISOR cycles per bit
//   +tx=FILE    bytes the board sends on its tx pin, one hex byte per line, flushed each byte
//   +ctl=FILE   the host writes one byte here to end the simulation
//   +dump=FILE  (Icarus) dump a trace of the whole run; Verilator traces through cocotb
// DIVISOR must equal the board top's UART divisor (a simulation-only baud: a few cycles per
// bit). CLOCK_PERIOD_NS comes from delayhw.sim.clock (passed by sim/board.py). Reset is held
// for the first 4 cycles.
`timescale 1ns/1ps
module board_sim (done, cycles);
    parameter DIVISOR = 4;
    parameter POLL = 64;              // cycles between polls of an exhausted input file
    parameter CTL_POLL = 4096;        // cycles between polls of the control file
    parameter CLOCK_PERIOD_NS = 0;    // delayhw.sim.clock.CLOCK_PERIOD_NS
    output reg        done   /*verilator public_flat_rd*/;
    output reg [63:0] cycles /*verilator public_flat_rd*/;

    reg clk = 0;
    initial if (CLOCK_PERIOD_NS < 2) $fatal(1, "board_sim: CLOCK_PERIOD_NS not set");
    always #(CLOCK_PERIOD_NS / 2) clk = ~clk;
    reg rst;
    reg [3:0] reset_count;
    reg rx;
    wire tx, led_busy, led_error;

    delayhw_board board (.clk(clk), .rst(rst), .rx(rx), .tx(tx), .led_busy(led_busy),
                         .led_error(led_error));

    reg [8*4096-1:0] rx_path, tx_path, ctl_path, dump_path;
    integer fin, fout, fctl, c, rx_pos, ctl_timer, poll_timer;
    // host -> board serialiser
    reg [9:0] out_shreg;
    integer out_bits, out_timer;
    // board -> host deserialiser
    reg [7:0] in_shreg;
    integer in_bits, in_timer;

    initial begin
        if (!$value$plusargs("rx=%s", rx_path)) $fatal(1, "board_sim: +rx=FILE missing");
        if (!$value$plusargs("tx=%s", tx_path)) $fatal(1, "board_sim: +tx=FILE missing");
        if (!$value$plusargs("ctl=%s", ctl_path)) $fatal(1, "board_sim: +ctl=FILE missing");
        fin = $fopen(rx_path, "r");
        fctl = $fopen(ctl_path, "r");
        fout = $fopen(tx_path, "w");
        if (fin == 0 || fctl == 0 || fout == 0) $fatal(1, "board_sim: cannot open the files");
        rst = 1; reset_count = 0; rx = 1; done = 0; cycles = 0;
        rx_pos = 0; ctl_timer = 0; poll_timer = 0;
        out_bits = 0; out_timer = 0; in_bits = -1; in_timer = 0;
`ifndef VERILATOR
        if ($value$plusargs("dump=%s", dump_path)) begin
            $dumpfile(dump_path);
            $dumpvars(0, board_sim);
        end
`endif
    end

    always @(posedge clk) begin
        if (rst) begin
            reset_count <= reset_count + 1;
            if (reset_count == 3) rst <= 0;
        end else if (!done) begin
            cycles <= cycles + 1;
            // ---- host -> board: one byte at a time onto rx (start, 8 data LSB first, stop)
            if (out_bits == 0) begin
                if (poll_timer == 0) begin
                    c = $fgetc(fin);
                    if (c < 0) begin
                        c = $fseek(fin, rx_pos, 0);       // clears EOF: the host may append
                        poll_timer = POLL;
                    end else begin
                        rx_pos = rx_pos + 1;
                        out_shreg = {1'b1, c[7:0], 1'b0};
                        out_bits = 10;
                        out_timer = DIVISOR;
                    end
                end else
                    poll_timer = poll_timer - 1;
            end
            if (out_bits > 0) begin
                rx <= out_shreg[0];
                out_timer = out_timer - 1;
                if (out_timer == 0) begin
                    out_shreg = {1'b1, out_shreg[9:1]};
                    out_bits = out_bits - 1;
                    out_timer = DIVISOR;
                end
            end else
                rx <= 1;
            // ---- board -> host: sample tx in the middle of each bit
            if (in_bits < 0) begin
                if (!tx) begin
                    in_bits = 0;
                    in_timer = DIVISOR + DIVISOR / 2;   // to the middle of data bit 0
                end
            end else begin
                in_timer = in_timer - 1;
                if (in_timer == 0) begin
                    if (in_bits < 8) begin
                        in_shreg = {tx, in_shreg[7:1]};
                        in_bits = in_bits + 1;
                        in_timer = DIVISOR;
                    end else begin                      // the stop bit
                        if (tx) begin
                            $fwrite(fout, "%02x\n", in_shreg);
                            $fflush(fout);
                        end else
                            $display("board_sim: tx framing error");
                        in_bits = -1;
                    end
                end
            end
            // ---- the host asks to stop
            ctl_timer = ctl_timer + 1;
            if (ctl_timer == CTL_POLL) begin
                ctl_timer = 0;
                c = $fgetc(fctl);
                if (c >= 0) begin
                    done <= 1;
                    $fclose(fout);
                end else
                    c = $fseek(fctl, 0, 0);
            end
        end
    end
endmodule
