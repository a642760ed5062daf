// delayhw's main loop for a cocotb simulation in Verilator (sim/runner.py builds with it in
// place of cocotb's share/lib/verilator/verilator.cpp).
//
// Contract: the same VPI schedule as cocotb's loop (start of simulation, per time slot:
// evaluate with value-change, inertial-put and ReadWrite callbacks until nothing changes,
// ReadOnly callbacks, trace, then next-sim-time and timed callbacks at the next slot; end of
// simulation), so any cocotb testbench runs unchanged. One difference: where no callback
// can run in a slot (none registered for value change, ReadWrite or ReadOnly, and the next
// timed callback later than the slot), the slot is only evaluated, without the per-slot VPI
// bookkeeping. A testbench that awaits a long Timer (delayhw's do: the clock is generated in
// the Verilog) then runs at the model's own speed between its wake-ups.
//
// Supported run options: --trace, --trace-file FILE (VCD), --trace-flush.
#include <cstdio>
#include <memory>
#include <string>

#include "Vtop.h"
#include "verilated.h"
#include "verilated_vpi.h"
#if VM_TRACE
#include <verilated_vcd_c.h>
static VerilatedVcdC* tfp = nullptr;
#endif

extern "C" void vlog_startup_routines_bootstrap(void);

static uint64_t main_time = 0;
double sc_time_stamp() { return static_cast<double>(main_time); }

static void set_time(uint64_t t) {
    main_time = t;
    Verilated::threadContextp()->time(t);
}

// Run value-change callbacks until none fires; true if any did.
static bool settle_value_callbacks() {
    bool any = false;
    while (VerilatedVpi::callValueCbs()) any = true;
    return any;
}

// No callback can run while this slot evaluates: none registered for value change,
// ReadWrite or ReadOnly. (Called only when no callback ran since the last slot, so no VPI
// write is pending either.)
static bool slot_is_quiet() {
    return !VerilatedVpi::hasCbs(cbValueChange) && !VerilatedVpi::hasCbs(cbReadWriteSynch)
           && !VerilatedVpi::hasCbs(cbReadOnlySynch);
}

static void end_of_simulation() {
    VerilatedVpi::callCbs(cbEndOfSimulation);
#if VM_TRACE
    if (tfp) tfp->close();
#endif
}

// One time slot with every VPI callback of cocotb's schedule.
static void evaluate_slot(Vtop* top) {
    do {
        do {
            top->eval_step();
            VerilatedVpi::clearEvalNeeded();
            VerilatedVpi::doInertialPuts();
            settle_value_callbacks();
        } while (VerilatedVpi::evalNeeded());
        VerilatedVpi::callCbs(cbReadWriteSynch);
        VerilatedVpi::doInertialPuts();
        settle_value_callbacks();
    } while (VerilatedVpi::evalNeeded());
    top->eval_end_step();
    VerilatedVpi::callCbs(cbReadOnlySynch);
}

int main(int argc, char** argv) {
    const char* trace_file = "dump.vcd";
    bool trace_on = false, trace_flush = false;
    for (int i = 1; i < argc; i++) {
        const std::string arg = argv[i];
        if (arg == "--trace") {
            trace_on = true;
        } else if (arg == "--trace-flush") {
            trace_flush = true;
        } else if (arg == "--trace-file" && i + 1 < argc) {
            trace_file = argv[++i];
        }
    }
#if !VM_TRACE
    if (trace_on) {
        std::fprintf(stderr, "Error: --trace needs a build with trace support\n");
        return 1;
    }
#endif
    Verilated::commandArgs(argc, argv);
    std::unique_ptr<Vtop> top(new Vtop(""));
    Verilated::fatalOnVpiError(false);
#if VM_TRACE
    Verilated::traceEverOn(true);
    if (trace_on) {
        tfp = new VerilatedVcdC;
        top->trace(tfp, 99);
        tfp->open(trace_file);
    }
#else
    (void)trace_file;
    (void)trace_flush;
#endif
    vlog_startup_routines_bootstrap();
    Verilated::addExitCb([](void*) { end_of_simulation(); }, nullptr);
    VerilatedVpi::callCbs(cbStartOfSimulation);
    settle_value_callbacks();

    constexpr uint64_t NEVER = ~0ULL;
    bool callbacks_ran = true;      // since the last slot (cocotb's start-up ran)
    while (!Verilated::gotFinish()) {
        if (!callbacks_ran && slot_is_quiet()) {
            top->eval_step();
            top->eval_end_step();
        } else {
            evaluate_slot(top.get());
        }
#if VM_TRACE
        if (tfp) {
            tfp->dump(main_time);
            if (trace_flush) tfp->flush();
        }
#endif
        if (Verilated::gotFinish()) break;
        const uint64_t deadline = VerilatedVpi::cbNextDeadline();
        const uint64_t next_slot = top->eventsPending() ? top->nextTimeSlot() : NEVER;
        const uint64_t next = next_slot < deadline ? next_slot : deadline;
        if (next == NEVER) break;
        set_time(next);
        callbacks_ran = VerilatedVpi::callCbs(cbNextSimTime);
        settle_value_callbacks();
        if (next >= deadline) {     // a timed callback is due in this slot
            callbacks_ran |= VerilatedVpi::callCbs(cbAfterDelay);
            settle_value_callbacks();
        }
    }
    top->final();
    end_of_simulation();
#if VM_TRACE
    delete tfp;
    tfp = nullptr;
#endif
    return Verilated::threadContextp()->errorCount() > 0 ? 1 : 0;
}
