#include <stdio.h>
#include <math.h>
#include <stdint.h>
typedef unsigned __int128 u128;
static uint64_t isqrt(uint64_t n) { uint64_t m = (uint64_t)sqrtl((long double)n); while ((u128)m*m > n) m--; while ((u128)(m+1)*(m+1) <= n) m++; return m; }
int main(void) {
  const uint64_t R2 = 1ULL << 62; u128 total = 0;
  for (uint64_t x = 0; x < (1ULL << 31); x++) {
    uint64_t m = isqrt(R2 - x*x - 1); u128 c = 2*(u128)m + 1; total += x ? 2*c : c;
  }
  printf("%llu %llu\n", (unsigned long long)(total >> 64), (unsigned long long)total);
}
