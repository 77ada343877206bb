#!/usr/bin/env bash
# Predicts the arm64 (Raspberry Pi 4/5) speed of each kernel's hot loop by
# static analysis: cross-builds the kernels crate for aarch64, extracts each
# hot loop's assembly (the NEON path of the generic loops over the SIMD
# layer), and runs llvm-mca on it for the Pi 4's core (Cortex-A72, which LLVM
# models with its Cortex-A57 model) and the Pi 5's (Cortex-A76, modelled by
# Neoverse-N1). For each loop it prints the predicted rate per core (the
# model's cycles per iteration, dependencies included) beside the floor of
# the same model (its resource bound, "Block RThroughput": what the same
# instructions could do with perfect scheduling).
#
#   scripts/arm64-mca.sh             # needs the packages below
#   scripts/arm64-mca.sh --install   # installs them first (Debian, as root)
#
# The cross build is scripts/arm64-check.sh's (Debian's Rust, rustc-web, with
# an arm64 standard library); qemu runs nothing here, so this says nothing of
# correctness: scripts/arm64-check.sh checks the bits.
#
# How a loop is found: the crate's assembly is emitted with v0 symbol names
# (generic arguments included), and among the innermost loops (a label and
# the backward branch to it, no other such loop inside) of kernel code, the
# one with the most of the kernel's signature instruction is taken:
#   leibniz     fdiv on .2d   (one per two lanes of sixteen terms: 32 terms)
#   pi-mc       shl .2d, #17  (one per xoshiro step of two lanes: 4 samples)
#   mandelbrot  fmla/fmls .2d in a loop without compares (the block phase:
#               three per step of two lanes: 2/3 pixel-iteration each)
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=aarch64-unknown-linux-gnu
MCA=${MCA:-llvm-mca-19}
FILT=${FILT:-llvm-cxxfilt-19}

if [[ ${1:-} == --install ]]; then
    dpkg --add-architecture arm64
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        rustc-web cargo-web "libstd-rust-web-dev:arm64" gcc-aarch64-linux-gnu libc6-dev-arm64-cross llvm-19 \
        >/dev/null
fi
for tool in /usr/bin/rustc /usr/bin/cargo "$MCA" "$FILT"; do
    command -v "$tool" >/dev/null || { echo "arm64-mca: $tool is missing (run with --install)" >&2; exit 1; }
done

out=target/arm64/mca
mkdir -p "$out"
RUSTC=/usr/bin/rustc CARGO_TARGET_DIR=target/arm64 \
    /usr/bin/cargo rustc -q --release --locked -p pikernels-kernels --lib --target "$TARGET" -- \
    --emit=asm -C symbol-mangling-version=v0
asm=$(ls -t target/arm64/$TARGET/release/deps/kernels-*.s | head -1)
"$FILT" <"$asm" >"$out/kernels.s"

python3 - "$out" "$MCA" <<'EOF'
import re, subprocess, sys
out, mca = sys.argv[1], sys.argv[2]
lines = open(f"{out}/kernels.s").read().splitlines()

# Functions: a label line that is not local (.L...) starts one.
funcs, name = [], None
for i, l in enumerate(lines):
    m = re.match(r'^([^\s.].*):\s*(//.*)?$', l)
    if m:
        name = m.group(1)
    funcs.append(name)

label_at = {}
for i, l in enumerate(lines):
    m = re.match(r'^(\.LBB\w+):', l)
    if m:
        label_at[m.group(1)] = i
loops = []
for j, l in enumerate(lines):
    m = re.search(r'^\s+(b(\.\w+)?|cbn?z|tbn?z)\s.*?(\.LBB\w+)\s*$', l)
    if m and m.group(3) in label_at and label_at[m.group(3)] < j:
        loops.append((label_at[m.group(3)], j))
inner = [(a, b) for a, b in loops if not any(a <= c and d <= b and (c, d) != (a, b) for c, d in loops)]

def body(a, b):
    return [l for l in lines[a + 1:b + 1] if l.startswith('\t') and not l.strip().startswith(('.', '//'))]

kernels = {
    # name: (function filter, signature regex, exclusion regex, work per signature op, unit)
    'leibniz': ('leibniz', r'\bfdiv\s+v\d+\.2d', None, 32, 'terms/s'),
    'pi-mc': ('pi_mc', r'\bshl\s+v\d+\.2d, v\d+\.2d, #17', None, 4, 'samples/s'),
    'mandelbrot (block phase)': ('mandelbrot', r'\bfml[as]\s+v\d+\.2d', r'\bfcm', 2 / 3, 'pixel-iterations/s'),
}
cpus = [('Pi 4', 'cortex-a72', 1.8), ('Pi 5', 'neoverse-n1', 2.4)]
print(f"| kernel | loop: instructions, work | " + " | ".join(f"{p} ({c}, {g} GHz) predicted / floor" for p, c, g in cpus) + " |")
print("|---|---|" + "---|" * len(cpus))
for kname, (ffilter, sig, excl, per, unit) in kernels.items():
    best = None
    for a, b in inner:
        f = funcs[a] or ''
        if 'kernels::' + ffilter not in f and ffilter not in f:
            continue
        ins = body(a, b)
        if excl and any(re.search(excl, x) for x in ins):
            continue
        n = sum(1 for x in ins if re.search(sig, x))
        if n and (best is None or n > best[0]):
            best = (n, a, b, f)
    if best is None:
        print(f"| {kname} | no loop found | " + " | ".join("-" for _ in cpus) + " |")
        continue
    n, a, b, f = best
    ins = body(a, b)
    work = n * per
    open(f"{out}/{kname.split()[0]}.s", 'w').write("\n".join(ins) + "\n")
    cells = []
    for p, cpu, ghz in cpus:
        r = subprocess.run([mca, '-mtriple=aarch64', f'-mcpu={cpu}', '-iterations=1000'], input="\n".join(ins) + "\n",
                           capture_output=True, text=True, check=True).stdout
        # The whole report (resource pressure per pipe, per instruction) beside the loop.
        open(f"{out}/{kname.split()[0]}-{cpu}.txt", 'w').write(r)
        cycles = int(re.search(r'Total Cycles:\s+(\d+)', r).group(1)) / 1000
        rthr = float(re.search(r'Block RThroughput:\s+([\d.]+)', r).group(1))
        cells.append(f"{work / cycles * ghz * 1e9:.2e} / {work / rthr * ghz * 1e9:.2e}")
    print(f"| {kname} | {len(ins)} instr., {work:g} {unit.split('/')[0]} | " + " | ".join(cells) + " |")
    print(f"<!-- {kname}: {f[:160]} -->", file=sys.stderr)
print(f"\nRates per core; each loop's assembly is in {out}/<kernel>.s, llvm-mca's report in {out}/<kernel>-<cpu>.txt.")
EOF
