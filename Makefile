# Build, boot and test our KSM on Debian's Linux 6.12 source. See README.md.
#
#   make run      build (if needed) and boot the patched kernel, run the KSM demo
#   make test     build the debug kernel and run every test, then check the patch series
#                 (git am, same tree, checkpatch) and build the quick entries of the
#                 configuration matrix; closing line `N passed, N failed`
#   make patches  write our KSM as a git format-patch series to $(BUILD)/patches
#                 (PATCHES_OUT=dir for another place; harness/series.py, patches/log/)
#   make series-check  write the series and check it (git am, checkpatch, a build per patch)
#   make full-check    the series check with its builds and every matrix entry, one
#                 closing line (`make test` runs the series check without the builds
#                 and only the matrix entries of MATRIX_QUICK, to fit CI's time)
#   make shell    boot the patched kernel into a busybox shell
#   make kernel   just build (VARIANT=ours|pristine, FLAVOUR=debug|perf)
#   make stress   mm-stress and mm-random of harness/tests.list for STRESS_SECS (300) s each
#   make stress-random  only mm-random (seeded random system calls), STRESS_SECS seconds
#   make matrix   compile our KSM objects (W=1, sparse) in other configurations and
#                 on i386 and arm64 (harness/config-matrix.sh; MATRIX_ONLY=a,b for some)
#   make bench    build the perf kernels (pristine and ours), run the KSM workloads
#                 under QEMU -icount on both; table, $(BUILD)/bench/results.{csv,png}
#   make nested   boot the kernel and run only the nested QEMU workload
#
# VARIANT=pristine runs the same on the base tree, with its own KSM.
# STAGING=1 also lays staging/ (work in progress) onto our tree.
# ONLY=a,b limits `make test` to those tests of harness/tests.list (`series` and
# `matrix` name the series check and the matrix); NOSKIP=1
# also runs the tests that harness/skip.list holds back. REPEAT=N runs every
# test N times, a fresh boot each, and prints how many of the N passed per test.
# TEST_JOBS=N boots N test guests at a time (1; CI keeps 1).
# RECORD=FILE keeps each boot's verdict in FILE and skips the boots FILE
# already holds for the same sources, so a REPEAT run can be resumed.
# `make run` goes on after the demo with three QEMU guests booted inside the
# guest for NESTED_SECS seconds (harness/guest/ksm_nested.sh); they boot a
# small kernel of their own (harness/config/inner.config), which `make run`
# builds (NESTED_KERNEL= another bzImage).
# NESTED=0 stops after the demo and builds only the kernel under test.

VARIANT ?= ours
FLAVOUR ?= debug
BUILD   ?= $(CURDIR)/build
ONLY    ?=
REPEAT  ?= 1
TEST_JOBS ?= 1
comma   := ,
export BUILD STAGING

KERNEL  = $(BUILD)/out/$(VARIANT)-$(FLAVOUR)/arch/x86/boot/bzImage
INITRD  = $(BUILD)/guest/initramfs.cpio.gz
LOGDIR  = $(BUILD)/logs/$(VARIANT)-$(FLAVOUR)-$(shell date +%Y%m%d-%H%M%S)
NESTED  ?= 1
NESTED_ON = $(filter-out 0 no,$(NESTED))
NESTED_SECS ?= 240
# The inner guests boot a kernel of their own: under TCG inside TCG the perf
# kernel did not reach /init in 5 minutes.
INNER_KERNEL = $(BUILD)/out/$(VARIANT)-inner/arch/x86/boot/bzImage
NESTED_KERNEL ?= $(INNER_KERNEL)
NESTED_INITRD = $(BUILD)/guest/initramfs-nested.cpio.gz
KSMT    = python3 harness/ksmt.py --variant $(VARIANT) --kernel $(KERNEL) --initrd $(INITRD) \
	  --swap --dimm-mb 256 --logdir $(LOGDIR)

.PHONY: deps kernel userspace initramfs initramfs-nested nested-kernel test stress stress-random run shell nested \
	bench matrix patches series-check full-check clean

deps:
	@harness/deps.sh

kernel: deps
	@harness/build-kernel.sh $(VARIANT) $(FLAVOUR) >/dev/null

initramfs: deps
	@harness/mkinitramfs.sh >/dev/null

# The QEMU tests, then (whole runs of VARIANT=ours) the series check and the
# matrix; harness/test-all.sh adds their closing lines up.
test: kernel initramfs
	@ONLY=$(ONLY) VARIANT=$(VARIANT) REPEAT=$(REPEAT) harness/test-all.sh \
		$(KSMT) test $(if $(NOSKIP),--no-skip) \
		$(if $(filter-out 1,$(REPEAT)),--repeat $(REPEAT)) \
		$(if $(filter-out 1,$(TEST_JOBS)),--jobs $(TEST_JOBS)) \
		$(if $(RECORD),--record $(RECORD))

# Our KSM as a patch series against the base tree (harness/series.py).
PATCHES_OUT ?= $(BUILD)/patches
patches: deps
	@python3 harness/series.py make --out $(PATCHES_OUT)

series-check: deps
	@python3 harness/series.py check --out $(PATCHES_OUT)

full-check: deps
	@FULL=1 ONLY=series,matrix harness/test-all.sh

# The long stress runs: mm-stress (8 processes) and mm-random (seeded random
# system calls and knob writes), STRESS_SECS each; `make test` gives them 60 s.
STRESS_SECS ?= 300
stress: kernel initramfs
	@$(KSMT) test --only mm-stress,mm-random --append KSM_STRESS_SECS=$(STRESS_SECS)

stress-random: kernel initramfs
	@$(KSMT) test --only mm-random --append KSM_STRESS_SECS=$(STRESS_SECS)

# The kernel the inner guests boot, unless NESTED_KERNEL names another.
nested-kernel: deps
	@if [ "$(NESTED_KERNEL)" = "$(INNER_KERNEL)" ]; then \
		harness/build-kernel.sh $(VARIANT) inner >/dev/null; fi

# The initramfs with QEMU and NESTED_KERNEL for the inner guests.
initramfs-nested: kernel nested-kernel
	@NESTED_KERNEL=$(NESTED_KERNEL) harness/mkinitramfs.sh >/dev/null

run: kernel initramfs $(if $(NESTED_ON),initramfs-nested)
	@$(KSMT) boot --mode demo --timeout 1800 \
		$(if $(NESTED_ON),--initrd $(NESTED_INITRD) --nested $(NESTED_SECS))

nested: kernel initramfs-nested
	@$(KSMT) --initrd $(NESTED_INITRD) boot --mode nested --args $(NESTED_SECS) --timeout 1800

shell: kernel initramfs
	@$(KSMT) boot --mode shell

# BENCH_ONLY=w1,w2,w3,w5,w6,dflt,fam,scale,nested runs a subset; BENCH_JOBS=N boots at a time (2);
# BENCH_PROFILE=1 also samples ksmd (perturbs the figures) into $(BUILD)/bench/profile.txt.
bench: deps
	@set -e; start=$$(date +%s); \
	WITH_BENCH=1 harness/deps.sh; \
	harness/build-kernel.sh pristine perf >/dev/null; \
	harness/build-kernel.sh ours perf >/dev/null; \
	harness/mkinitramfs.sh >/dev/null; \
	NESTED_KERNEL=$(BUILD)/out/pristine-perf/arch/x86/boot/bzImage harness/mkinitramfs.sh >/dev/null; \
	rc=0; python3 harness/bench.py --base $(BUILD)/out/pristine-perf/arch/x86/boot/bzImage \
		--ours $(BUILD)/out/ours-perf/arch/x86/boot/bzImage --initrd $(INITRD) \
		--nested-initrd $(NESTED_INITRD) --out $(BUILD)/bench --src $(BUILD)/src $(if $(BENCH_ONLY),--only $(BENCH_ONLY)) || rc=$$?; \
	echo "# make bench: $$(( $$(date +%s) - start )) s of wall time in all"; exit $$rc

# Compile-only configuration matrix; closing line `N passed, N failed`.
MATRIX_ONLY ?=
matrix: deps
	@harness/config-matrix.sh $(subst $(comma), ,$(MATRIX_ONLY))

clean:
	rm -rf $(BUILD)/out $(BUILD)/guest $(BUILD)/logs
