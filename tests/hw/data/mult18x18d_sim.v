// Behavioural model of the ECP5 MULT18X18D, for the PE equivalence tests only.
//
// Yosys ships MULT18X18D as a black box (lattice/cells_bb_ecp5.v), so this model is written
// from Lattice TN1267 (ECP5 and ECP5-5G sysDSP Usage Guide): P = A x B, each operand signed
// when its SIGNEDx pin is high; the optional input registers (REG_INPUTA/B_CLK = "CLK0") and
// output register (REG_OUTPUT_CLK = "CLK0") load on the rising edge of CLK0 when CE0 is high
// and clear synchronously when RST0 is high (RESETMODE = "SYNC"). It models exactly the
// settings hw/dsp_pe.py uses and stops the simulation on any other (pipeline register, other
// clocks, shift inputs, bypass).
`timescale 1ns / 1ps
`default_nettype none
module MULT18X18D (
    input wire A0, A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12, A13, A14, A15, A16, A17,
    input wire B0, B1, B2, B3, B4, B5, B6, B7, B8, B9, B10, B11, B12, B13, B14, B15, B16, B17,
    input wire SIGNEDA, SIGNEDB, SOURCEA, SOURCEB, CLK0, CE0, RST0,
    output wire P0, P1, P2, P3, P4, P5, P6, P7, P8, P9, P10, P11, P12, P13, P14, P15, P16, P17, P18, P19, P20, P21, P22, P23, P24, P25, P26, P27, P28, P29, P30, P31, P32, P33, P34, P35
);
    parameter REG_INPUTA_CLK = "NONE";
    parameter REG_INPUTB_CLK = "NONE";
    parameter REG_INPUTC_CLK = "NONE";
    parameter REG_PIPELINE_CLK = "NONE";
    parameter REG_OUTPUT_CLK = "NONE";
    parameter REG_OUTPUT_CE = "CE0";
    parameter REG_OUTPUT_RST = "RST0";
    parameter REG_INPUTA_CE = "CE0";
    parameter REG_INPUTA_RST = "RST0";
    parameter REG_INPUTB_CE = "CE0";
    parameter REG_INPUTB_RST = "RST0";
    parameter RESETMODE = "SYNC";
    parameter MULT_BYPASS = "DISABLED";
    parameter GSR = "ENABLED";
    parameter SOURCEB_MODE = "B_SHIFT";
    parameter CAS_MATCH_REG = "FALSE";

    wire [17:0] a_pin = {A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0};
    wire [17:0] b_pin = {B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0};
    // The optional input registers (REG_INPUTA/B_CLK = "CLK0"): CE0 loads, RST0 clears.
    reg [17:0] a_reg = 18'd0, b_reg = 18'd0;
    always @(posedge CLK0)
        if (RST0) begin a_reg <= 18'd0; b_reg <= 18'd0; end
        else if (CE0) begin a_reg <= a_pin; b_reg <= b_pin; end
    wire [17:0] a = REG_INPUTA_CLK == "CLK0" ? a_reg : a_pin;
    wire [17:0] b = REG_INPUTB_CLK == "CLK0" ? b_reg : b_pin;
    wire signed [18:0] a_ext = {SIGNEDA & a[17], a};
    wire signed [18:0] b_ext = {SIGNEDB & b[17], b};
    wire signed [37:0] product = a_ext * b_ext;
    reg [35:0] p_reg = 36'd0;
    wire [35:0] p = REG_OUTPUT_CLK == "CLK0" ? p_reg : product[35:0];
    assign {P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0} = p;

    always @(posedge CLK0)
        if (RST0) p_reg <= 36'd0;
        else if (CE0) p_reg <= product[35:0];

    initial begin
        if ((REG_INPUTA_CLK != "NONE" && REG_INPUTA_CLK != "CLK0") ||
            (REG_INPUTB_CLK != "NONE" && REG_INPUTB_CLK != "CLK0") ||
            REG_INPUTA_CE != "CE0" || REG_INPUTA_RST != "RST0" ||
            REG_INPUTB_CE != "CE0" || REG_INPUTB_RST != "RST0" || REG_INPUTC_CLK != "NONE" ||
            REG_PIPELINE_CLK != "NONE" || (REG_OUTPUT_CLK != "NONE" && REG_OUTPUT_CLK != "CLK0") ||
            REG_OUTPUT_CE != "CE0" || REG_OUTPUT_RST != "RST0" || RESETMODE != "SYNC" ||
            MULT_BYPASS != "DISABLED") begin
            $display("MULT18X18D model: unmodelled configuration");
            $finish_and_return(2);
        end
    end
    always @(SOURCEA or SOURCEB)
        if (SOURCEA !== 1'b0 || SOURCEB !== 1'b0) begin
            $display("MULT18X18D model: shift inputs (SOURCEA/SOURCEB) are not modelled");
            $finish_and_return(2);
        end
endmodule
