// CUDA's names for the host: generated CUDA C compiled by g++ runs each block of a
// launch in turn. A kernel that synchronises its block runs each thread as an OS
// thread (`__syncthreads` is a barrier of the block's threads, `__shared__` memory a
// static they share); any other kernel runs its threads one after another.
#include <barrier>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

struct uint3 { unsigned int x, y, z; };
static thread_local uint3 threadIdx, blockIdx;
static uint3 blockDim, gridDim;
static std::barrier<>* block_barrier;
#define __global__
#define __shared__ static
using std::isfinite;
using std::isinf;
static inline void __syncthreads() { block_barrier->arrive_and_wait(); }
static inline float __int_as_float(int bits) { float f; std::memcpy(&f, &bits, 4); return f; }
static inline unsigned int __float_as_uint(float f) { unsigned int bits; std::memcpy(&bits, &f, 4); return bits; }
static inline double __longlong_as_double(long long bits) { double d; std::memcpy(&d, &bits, 8); return d; }

template <class Body> static void launch(const unsigned* grid, const unsigned* block, bool synchronises, Body body) {
    gridDim = {grid[0], grid[1], grid[2]};
    blockDim = {block[0], block[1], block[2]};
    const unsigned threads = block[0] * block[1] * block[2];
    auto thread_index = [=](unsigned t) {
        return uint3{t % block[0], (t / block[0]) % block[1], t / (block[0] * block[1])};
    };
    for (unsigned z = 0; z < grid[2]; ++z)
    for (unsigned y = 0; y < grid[1]; ++y)
    for (unsigned x = 0; x < grid[0]; ++x) {
        if (!synchronises) {
            blockIdx = {x, y, z};
            for (unsigned t = 0; t < threads; ++t) {
                threadIdx = thread_index(t);
                body();
            }
            continue;
        }
        std::barrier<> barrier(threads);
        block_barrier = &barrier;
        std::vector<std::thread> running;
        for (unsigned t = 0; t < threads; ++t) {
            running.emplace_back([=] {
                blockIdx = {x, y, z};
                threadIdx = thread_index(t);
                body();
            });
        }
        for (auto& thread : running) thread.join();
    }
}
