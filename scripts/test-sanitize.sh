#!/usr/bin/env bash
# The engine under AddressSanitizer and UndefinedBehaviorSanitizer (with float-cast-overflow): builds a second copy
# of the addon in build-sanitize/ (the normal build is untouched), preloads the sanitizer runtimes into node, and
# runs the engine and CLI tests, which include the odd-input cases (test/engine/oddInputs.test.ts). Any report
# aborts the run. Run it before each submission that touches native/ (`npm run test:sanitize`).
set -euo pipefail
cd "$(dirname "$0")/.."

tree=build-sanitize/tree
rm -rf "$tree"
mkdir -p "$tree"
cp -r binding.gyp native "$tree/"
flags="-fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all -fno-omit-frame-pointer -g"
# npm's bundled node-gyp (npm names it in npm_config_node_gyp under `npm run`; otherwise it sits next to npm).
gyp=${npm_config_node_gyp:-$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js}
# Where npm finds Node's headers (Debian's npm sets nodedir=/usr); without it node-gyp would try to download them.
nodedir=${npm_config_nodedir:-$(npm config get nodedir 2>/dev/null || true)}
[ -n "$nodedir" ] && [ "$nodedir" != "undefined" ] && export npm_config_nodedir="$nodedir"
(cd "$tree" && CXXFLAGS="$flags" LDFLAGS="$flags" node "$gyp" rebuild --loglevel=error >../build.log 2>&1) ||
  { tail -40 build-sanitize/build.log >&2; exit 1; }
addon="$PWD/$tree/build/Release/aha_engine.node"
[ "$(nm -D "$addon" | grep -c __asan_init)" -gt 0 ] || { echo "test:sanitize: the addon was not built with ASan" >&2; exit 1; }

export AHA_ENGINE="$addon"
export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
# Node's own allocations are never freed at exit: leak reports would be noise about node, not the engine.
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
# The >4 GiB model test needs twice its weights in memory; under ASan's shadow memory and speed it is left out.
tests=$(find test/engine test/cli -name '*.test.ts' ! -name 'largeModel.test.ts' | sort)
node --import tsx --test --test-reporter=spec $tests
