// Runtime dispatch of the kernel tables (generic x86-64: no intrinsics here).
#include "index/kernels.h"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <memory>

namespace qvec::index {
namespace {

bool CpuHasAvx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("bmi2");
}

bool CpuHasAvx512() {
  __builtin_cpu_init();
  return CpuHasAvx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vnni");
}

// AMX needs three things: the CPU's AMX-TILE and AMX-INT8 bits, an OS that
// enabled the tile state in XCR0, and (Linux >= 5.16) this process's request
// for permission to use tile data; without the permission the first tile
// instruction faults. The request is made once, before any tile is touched.
bool CpuHasAmx() {
  static const bool supported = [] {
    if (!CpuHasAvx512()) {
      return false;
    }
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) {
      return false;
    }
    const bool amx_tile = (edx >> 24) & 1u, amx_int8 = (edx >> 25) & 1u;
    if (!amx_tile || !amx_int8) {
      return false;
    }
    if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0 || ((ecx >> 27) & 1u) == 0) {
      return false;  // no OSXSAVE: XCR0 cannot be read
    }
    uint32_t xcr0_lo = 0, xcr0_hi = 0;
    __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    constexpr uint32_t kTileStateBits = (1u << 17) | (1u << 18);  // XTILECFG, XTILEDATA
    if ((xcr0_lo & kTileStateBits) != kTileStateBits) {
      return false;
    }
#if defined(__linux__) && defined(SYS_arch_prctl)
    constexpr long kArchReqXcompPerm = 0x1023;
    constexpr long kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
    return false;
#endif
  }();
  return supported;
}

bool CpuSupports(SimdLevel level) {
  switch (level) {
    case SimdLevel::kScalar:
      return true;
    case SimdLevel::kAvx2:
      return CpuHasAvx2();
    case SimdLevel::kAvx512:
      return CpuHasAvx512();
    case SimdLevel::kAmx:
      return CpuHasAmx();
  }
  return false;
}

SimdLevel BestLevel() {
  if (CpuHasAmx()) {
    return SimdLevel::kAmx;
  }
  if (CpuHasAvx512()) {
    return SimdLevel::kAvx512;
  }
  if (CpuHasAvx2()) {
    return SimdLevel::kAvx2;
  }
  return SimdLevel::kScalar;
}

struct AlignedFree {
  void operator()(uint8_t* p) const { std::free(p); }
};

}  // namespace

namespace internal {

SimdLevel ChooseSimdLevel(const char* env_value) {
  if (env_value == nullptr) {
    return BestLevel();
  }
  SimdLevel wanted;
  if (std::strcmp(env_value, "scalar") == 0) {
    wanted = SimdLevel::kScalar;
  } else if (std::strcmp(env_value, "avx2") == 0) {
    wanted = SimdLevel::kAvx2;
  } else if (std::strcmp(env_value, "avx512") == 0) {
    wanted = SimdLevel::kAvx512;
  } else if (std::strcmp(env_value, "amx") == 0) {
    wanted = SimdLevel::kAmx;
  } else {
    return BestLevel();
  }
  return CpuSupports(wanted) ? wanted : BestLevel();
}

uint8_t* ThreadScratch(size_t bytes, int slot) {
  struct Buffer {
    std::unique_ptr<uint8_t, AlignedFree> data;
    size_t capacity = 0;
  };
  thread_local Buffer buffers[4];
  Buffer& b = buffers[slot];
  if (b.capacity < bytes) {
    const size_t cap = (bytes + 63) / 64 * 64;
    b.data.reset(static_cast<uint8_t*>(std::aligned_alloc(64, cap)));
    b.capacity = b.data ? cap : 0;
  }
  return b.data.get();
}

}  // namespace internal

SimdLevel ActiveSimdLevel() {
  static const SimdLevel level = internal::ChooseSimdLevel(std::getenv("QVEC_SIMD"));
  return level;
}

const Kernels* KernelsFor(SimdLevel level) {
  if (!CpuSupports(level)) {
    return nullptr;
  }
  switch (level) {
    case SimdLevel::kScalar:
      return &internal::ScalarKernels();
    case SimdLevel::kAvx2:
      return &internal::Avx2Kernels();
    case SimdLevel::kAvx512:
      return &internal::Avx512Kernels();
    case SimdLevel::kAmx:
      return &internal::AmxKernels();
  }
  return nullptr;
}

const Kernels& ActiveKernels() {
  static const Kernels* kernels = KernelsFor(ActiveSimdLevel());
  return *kernels;
}

std::string_view SimdLevelName(SimdLevel level) {
  switch (level) {
    case SimdLevel::kScalar:
      return "scalar";
    case SimdLevel::kAvx2:
      return "avx2";
    case SimdLevel::kAvx512:
      return "avx512";
    case SimdLevel::kAmx:
      return "amx";
  }
  return "unknown";
}

}  // namespace qvec::index
