// qmac fast path: a compiled Verilator harness for hw.engine.GemmEngine (sim/fast.py).
//
// Drives the engine's input streams (command, channels, weights, activations and, built with
// -DQMAC_TABLE=1 for an engine with an activation table, table) from buffers and takes its
// results stream, with the same random stalls, cycle for cycle, as the
// cocotb bench sim/tb_engine.py (sim/streams.py's StreamDriver and StreamSink):
//
// * every signal is written once a cycle (the "write phase", after the falling edge) and
//   sampled before the next rising edge, where a beat moves iff valid and ready are high;
// * a driver draws one number per write phase until one is >= stall, then offers its beat
//   and holds it until it is taken, and draws again in the write phase after;
// * the sink draws one number per write phase and raises ready iff it is >= stall;
// * each stream has its own Mersenne Twister, whose state Python hands over (so the numbers
//   are exactly those random.Random draws in the bench).
//
// Usage: qmac_fast IN OUT. IN and OUT are little-endian binary files laid out by sim/fast.py
// (write_input, read_output): the header fields below, then the beats; OUT holds the result
// rows with the edge each was taken on, and the run's counters.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <vector>

#include "Vengine.h"
#include "verilated.h"

namespace {

constexpr uint64_t kMagicIn = 0x314e495453414651ULL;   // "QFASTIN1"
constexpr uint64_t kMagicOut = 0x3154554f53414651ULL;  // "QFASOUT1"
#ifndef QMAC_TABLE
#define QMAC_TABLE 0
#endif
// command, channels, weights, activations[, table]
constexpr int kInputs = 4 + QMAC_TABLE;
constexpr int kStreams = kInputs + 1;                   // + results
constexpr int kMtWords = 624;
constexpr uint64_t kNoEdge = ~0ULL;

// MT19937 as CPython's random module runs it: random() is genrand_res53.
struct Twister {
    uint32_t mt[kMtWords];
    uint32_t index;

    uint32_t next() {
        constexpr uint32_t upper = 0x80000000U, lower = 0x7fffffffU, matrix = 0x9908b0dfU;
        if (index >= kMtWords) {
            int k = 0;
            for (; k < kMtWords - 397; k++) {
                uint32_t y = (mt[k] & upper) | (mt[k + 1] & lower);
                mt[k] = mt[k + 397] ^ (y >> 1) ^ ((y & 1U) ? matrix : 0U);
            }
            for (; k < kMtWords - 1; k++) {
                uint32_t y = (mt[k] & upper) | (mt[k + 1] & lower);
                mt[k] = mt[k + (397 - kMtWords)] ^ (y >> 1) ^ ((y & 1U) ? matrix : 0U);
            }
            uint32_t y = (mt[kMtWords - 1] & upper) | (mt[0] & lower);
            mt[kMtWords - 1] = mt[396] ^ (y >> 1) ^ ((y & 1U) ? matrix : 0U);
            index = 0;
        }
        uint32_t y = mt[index++];
        y ^= (y >> 11);
        y ^= (y << 7) & 0x9d2c5680U;
        y ^= (y << 15) & 0xefc60000U;
        y ^= (y >> 18);
        return y;
    }

    double random() {
        uint32_t a = next() >> 5, b = next() >> 6;
        return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
    }
};

// Payload ports of every width Verilator uses, from / to 32-bit little-endian words.
inline void put(CData& port, const uint32_t* words) { port = static_cast<CData>(words[0]); }
inline void put(SData& port, const uint32_t* words) { port = static_cast<SData>(words[0]); }
inline void put(IData& port, const uint32_t* words) { port = words[0]; }
inline void put(QData& port, const uint32_t* words) {
    port = static_cast<QData>(words[0]) | (static_cast<QData>(words[1]) << 32);
}
template <std::size_t N>
inline void put(VlWide<N>& port, const uint32_t* words) {
    for (std::size_t i = 0; i < N; i++) port[i] = words[i];
}
inline void get(const CData& port, uint32_t* words) { words[0] = port; }
inline void get(const SData& port, uint32_t* words) { words[0] = port; }
inline void get(const IData& port, uint32_t* words) { words[0] = port; }
inline void get(const QData& port, uint32_t* words) {
    words[0] = static_cast<uint32_t>(port);
    words[1] = static_cast<uint32_t>(port >> 32);
}
template <std::size_t N>
inline void get(const VlWide<N>& port, uint32_t* words) {
    for (std::size_t i = 0; i < N; i++) words[i] = port[i];
}
template <typename T>
constexpr uint64_t words_of(const T&) { return (sizeof(T) + 3) / 4; }
template <std::size_t N>
constexpr uint64_t words_of(const VlWide<N>&) { return N; }

struct Driver {
    std::vector<uint32_t> data;
    uint64_t beats = 0, words = 0, next = 0, first_edge = kNoEdge;
    bool offering = false;
    Twister rng;
};

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "qmac_fast: %s\n", what);
    std::exit(2);
}

void read_exact(std::FILE* file, void* into, std::size_t bytes) {
    if (std::fread(into, 1, bytes, file) != bytes) fail("input file is truncated");
}

uint64_t read_u64(std::FILE* file) {
    uint64_t value;
    read_exact(file, &value, sizeof value);
    return value;
}

}  // namespace

// Verilator's C++ name of the port <stream>__<signal> (it escapes the second underscore).
#define QMAC_PORT(stream, signal) stream##___05F##signal

// One write phase and one sample of a driver on the ports <name>__{valid,ready,payload}.
#define QMAC_DRIVE(d, name)                                                      \
    do {                                                                         \
        if (!(d).offering && (d).next < (d).beats &&                             \
            (stall == 0.0 || (d).rng.random() >= stall)) {                       \
            (d).offering = true;                                                 \
            put(top->QMAC_PORT(name, payload), &(d).data[(d).next * (d).words]);         \
        }                                                                        \
        top->QMAC_PORT(name, valid) = (d).offering;                                       \
    } while (0)
#define QMAC_SAMPLE(d, name)                                                     \
    do {                                                                         \
        if ((d).offering && top->QMAC_PORT(name, ready)) {                                \
            if ((d).first_edge == kNoEdge) (d).first_edge = edge;                \
            (d).offering = false;                                                \
            (d).next++;                                                          \
        }                                                                        \
    } while (0)

int main(int argc, char** argv) {
    if (argc != 3) fail("usage: qmac_fast IN OUT");
    std::FILE* in = std::fopen(argv[1], "rb");
    if (!in) fail("cannot open the input file");
    if (read_u64(in) != kMagicIn) fail("not a qmac_fast input file");
    double stall;
    read_exact(in, &stall, sizeof stall);
    const uint64_t timeout = read_u64(in), drain = read_u64(in), result_rows = read_u64(in),
                   reset_cycles = read_u64(in), result_words = read_u64(in);
    Driver drivers[kInputs];
    for (Driver& d : drivers) {
        d.beats = read_u64(in);
        d.words = read_u64(in);
        d.data.resize(d.beats * d.words);
        read_exact(in, d.data.data(), d.data.size() * sizeof(uint32_t));
    }
    Twister sink_rng;
    for (int s = 0; s < kStreams; s++) {
        Twister& rng = s < kInputs ? drivers[s].rng : sink_rng;
        read_exact(in, rng.mt, sizeof rng.mt);
        read_exact(in, &rng.index, sizeof rng.index);
    }
    std::fclose(in);

    auto context = std::make_unique<VerilatedContext>();
    auto top = std::make_unique<Vengine>(context.get());
    const uint64_t widths[kStreams] = {
        words_of(top->QMAC_PORT(command, payload)), words_of(top->QMAC_PORT(channels, payload)),
        words_of(top->QMAC_PORT(weights, payload)), words_of(top->QMAC_PORT(activations, payload)),
#if QMAC_TABLE
        words_of(top->QMAC_PORT(table, payload)),
#endif
        words_of(top->QMAC_PORT(results, payload))};
    for (int s = 0; s < kStreams; s++) {
        const uint64_t expected = s < kInputs ? drivers[s].words : result_words;
        if (widths[s] != expected) fail("payload width differs from the generated engine's");
    }

    // Reset, every stream idle (as the bench does before it starts its drivers and sink).
    top->clk = 0;
    top->rst = 1;
    top->QMAC_PORT(command, valid) = top->QMAC_PORT(channels, valid) = top->QMAC_PORT(weights, valid) = 0;
    top->QMAC_PORT(activations, valid) = 0;
#if QMAC_TABLE
    top->QMAC_PORT(table, valid) = 0;
#endif
    top->QMAC_PORT(results, ready) = 0;
    top->eval();
    for (uint64_t i = 0; i < reset_cycles; i++) {
        top->clk = 1;
        top->eval();
        top->clk = 0;
        top->eval();
    }
    top->rst = 0;

    std::vector<uint64_t> edges;
    std::vector<uint32_t> rows;
    edges.reserve(result_rows);
    rows.reserve(result_rows * result_words);
    std::vector<uint32_t> offered(result_words), payload(result_words);
    bool was_offered = false, finished = false;
    uint64_t violations = 0, first_violation = kNoEdge, edge = 0, finished_edge = kNoEdge;
    double wall = 0.0, cpu = 0.0;
    const auto started = std::chrono::steady_clock::now();
    const std::clock_t cpu_started = std::clock();
    for (uint64_t after = 0;; edge++) {
        if (finished_edge == kNoEdge) {
            bool done = edges.size() >= result_rows;
            for (const Driver& d : drivers) done = done && d.next == d.beats;
            if (done || edge >= timeout) {
                finished = done;
                finished_edge = edge;
                wall = std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                                     started).count();
                cpu = static_cast<double>(std::clock() - cpu_started) / CLOCKS_PER_SEC;
            }
        }
        if (finished_edge != kNoEdge && after++ == drain) break;
        // write phase
        QMAC_DRIVE(drivers[0], command);
        QMAC_DRIVE(drivers[1], channels);
        QMAC_DRIVE(drivers[2], weights);
        QMAC_DRIVE(drivers[3], activations);
#if QMAC_TABLE
        QMAC_DRIVE(drivers[4], table);
#endif
        const bool ready = stall == 0.0 || sink_rng.random() >= stall;
        top->QMAC_PORT(results, ready) = ready;
        top->clk = 0;  // the falling edge and the new inputs settle in one evaluation
        top->eval();
        // sample phase, before the rising edge
        QMAC_SAMPLE(drivers[0], command);
        QMAC_SAMPLE(drivers[1], channels);
        QMAC_SAMPLE(drivers[2], weights);
        QMAC_SAMPLE(drivers[3], activations);
#if QMAC_TABLE
        QMAC_SAMPLE(drivers[4], table);
#endif
        const bool valid = top->QMAC_PORT(results, valid);
        if (valid || was_offered) get(top->QMAC_PORT(results, payload), payload.data());
        if (was_offered && (!valid || payload != offered)) {
            if (first_violation == kNoEdge) first_violation = edge;
            violations++;
        }
        if (valid && ready) {
            edges.push_back(edge);
            rows.insert(rows.end(), payload.begin(), payload.end());
        }
        was_offered = valid && !ready;
        if (was_offered) offered = payload;
        top->clk = 1;
        top->eval();
    }
    top->final();

    std::FILE* out = std::fopen(argv[2], "wb");
    if (!out) fail("cannot open the output file");
    uint64_t first_input = kNoEdge;   // every input but the command
    for (int s = 1; s < kInputs; s++) first_input = std::min(first_input, drivers[s].first_edge);
    const uint64_t header[] = {
        kMagicOut, edges.size(), result_words, first_input,
        finished ? 1ULL : 0ULL,
        violations, first_violation, top->busy, top->error, edge,
        drivers[0].next, drivers[1].next, drivers[2].next, drivers[3].next,
#if QMAC_TABLE
        drivers[4].next,
#endif
    };
    std::fwrite(header, sizeof header, 1, out);
    std::fwrite(&wall, sizeof wall, 1, out);
    std::fwrite(&cpu, sizeof cpu, 1, out);
    std::fwrite(edges.data(), sizeof(uint64_t), edges.size(), out);
    std::fwrite(rows.data(), sizeof(uint32_t), rows.size(), out);
    if (std::fclose(out) != 0) fail("cannot write the output file");
    return 0;
}
