// The exact bias of pi-mc's grid: how many of the 2^64 points (x, y), x and y
// in [-2^31, 2^31), satisfy x^2 + y^2 < 2^62, and so what 4 * count / 2^64
// is instead of pi. About 20 s.
//
//   gcc -O2 scripts/pi_mc_grid.c -o /tmp/pi_mc_grid -lm && /tmp/pi_mc_grid
//
// It printed count = 14488038916154045361, pi * 2^62 - 200323.8: the grid's
// pi is 3.14159265358974980..., pi - 4.34e-14. Not part of the build or tests.
#include <stdio.h>
#include <math.h>
#include <stdint.h>
typedef unsigned __int128 u128;
static uint64_t isqrt(uint64_t n) { uint64_t m = (uint64_t)sqrtl((long double)n); while ((u128)m*m > n) m--; while ((u128)(m+1)*(m+1) <= n) m++; return m; }
int main(void) {
  const uint64_t R2 = 1ULL << 62; u128 total = 0;
  // Column x holds 2m + 1 points, |y| <= m = isqrt(2^62 - x^2 - 1); columns x and -x match; column -2^31 has none.
  for (uint64_t x = 0; x < (1ULL << 31); x++) {
    uint64_t m = isqrt(R2 - x*x - 1); u128 c = 2*(u128)m + 1; total += x ? 2*c : c;
  }
  // The count is below 2^64 (it is about pi 2^62).
  printf("count = %llu, grid pi = %.17Lf\n", (unsigned long long)total, 4.0L * (long double)total / 18446744073709551616.0L);
}
