"""The fixed part of a counterexample's C program (``creplay`` fills in the steps)."""

from __future__ import annotations

__all__ = ["MAIN_END", "PRELUDE"]

PRELUDE = r"""/*
 * A vfio-hil counterexample, replayed on a real device: @DEVICE@.
 * The same steps as @SCENARIO@; "want" is what the kernel side did when the
 * run was recorded.
 *
 *   gcc -Wall -Werror -o replay THIS_FILE.c && sudo ./replay 0000:00:03.0
 *
 * Opens the device through its IOMMU group and the VFIO container, creates
 * one eventfd per slot, plays every step and prints its return value or errno
 * and the eventfd counters.  Exit: 0 all steps as recorded, 1 some step
 * differed, 2 setup failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/vfio.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define SLOTS @SLOTS@
/* The waits of vfio_hil._lockstep.timing's policy for replays. */
#define SETTLE_US @SETTLE_US@
#define CONVERGE_US @CONVERGE_US@
#define POLL_US @POLL_US@
#define RECHECK @RECHECK@
#define PCI_COMMAND 0x04
#define CMD_MEMORY_MASTER 0x6
#define CMD_INTX_DISABLE 0x400
#define MAYBE_UNUSED __attribute__((unused))

static int efd[SLOTS];
static int group = -1, container = -1, device = -1;
static int closed_fd = -1, not_eventfd = -1;
static const char *address;

static int fail(const char *what)
{
	fprintf(stderr, "%s: %s\n", what, strerror(errno));
	return -1;
}

static int open_group(void)
{
	char path[PATH_MAX], link[PATH_MAX];
	const char *name;
	ssize_t n;
	int noiommu = 0, type;
	struct vfio_group_status status = { .argsz = sizeof(status) };

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group", address);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return fail(path);
	link[n] = 0;
	name = strrchr(link, '/') ? strrchr(link, '/') + 1 : link;
	snprintf(path, sizeof(path), "/dev/vfio/%.64s", name);
	group = open(path, O_RDWR | O_CLOEXEC);
	if (group < 0) {
		snprintf(path, sizeof(path), "/dev/vfio/noiommu-%.64s", name);
		group = open(path, O_RDWR | O_CLOEXEC);
		noiommu = 1;
	}
	if (group < 0)
		return fail(path);
	container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (container < 0)
		return fail("/dev/vfio/vfio");
	if (ioctl(container, VFIO_GET_API_VERSION) != VFIO_API_VERSION)
		return fail("VFIO_GET_API_VERSION");
	if (ioctl(group, VFIO_GROUP_GET_STATUS, &status) < 0)
		return fail("VFIO_GROUP_GET_STATUS");
	if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE)) {
		fprintf(stderr, "group %s is not viable: bind every device in it to vfio-pci\n", name);
		return -1;
	}
	if (ioctl(group, VFIO_GROUP_SET_CONTAINER, &container) < 0)
		return fail("VFIO_GROUP_SET_CONTAINER");
	if (noiommu)
		type = VFIO_NOIOMMU_IOMMU;
	else if (ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) > 0)
		type = VFIO_TYPE1v2_IOMMU;
	else
		type = VFIO_TYPE1_IOMMU;
	if (ioctl(container, VFIO_SET_IOMMU, type) < 0)
		return fail("VFIO_SET_IOMMU");
	return 0;
}

static int open_device_fd(void)
{
	device = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, address);
	return device < 0 ? fail("VFIO_GROUP_GET_DEVICE_FD") : 0;
}

static int set_irqs(uint32_t argsz, uint32_t flags, uint32_t index, uint32_t start,
		uint32_t count, const void *data, size_t len, size_t total)
{
	struct vfio_irq_set *set = calloc(1, sizeof(*set) + (total > len ? total : len));
	int ret, saved;

	if (!set)
		return -ENOMEM;
	set->argsz = argsz;
	set->flags = flags;
	set->index = index;
	set->start = start;
	set->count = count;
	if (len)
		memcpy(set->data, data, len);
	ret = ioctl(device, VFIO_DEVICE_SET_IRQS, set);
	saved = errno;
	free(set);
	return ret < 0 ? -saved : ret;
}

static long long region_offset(uint32_t index)
{
	struct vfio_region_info info = { .argsz = sizeof(info), .index = index };

	if (ioctl(device, VFIO_DEVICE_GET_REGION_INFO, &info) < 0)
		return -1;
	return (long long)info.offset;
}

static int config_command(uint16_t *cmd, int write)
{
	long long cfg = region_offset(VFIO_PCI_CONFIG_REGION_INDEX);
	ssize_t n;

	if (cfg < 0)
		return -errno;
	if (write)
		n = pwrite(device, cmd, 2, cfg + PCI_COMMAND);
	else
		n = pread(device, cmd, 2, cfg + PCI_COMMAND);
	return n == 2 ? 0 : -(errno ? errno : EIO);
}

/* edu's interrupt registers in BAR0, with memory decoding and bus mastering on. */
MAYBE_UNUSED static int edu_write(uint32_t reg, uint32_t value)
{
	uint16_t cmd;
	long long bar0 = region_offset(VFIO_PCI_BAR0_REGION_INDEX);
	int ret = config_command(&cmd, 0);

	if (ret)
		return ret;
	if ((cmd & CMD_MEMORY_MASTER) != CMD_MEMORY_MASTER) {
		cmd |= CMD_MEMORY_MASTER;
		ret = config_command(&cmd, 1);
		if (ret)
			return ret;
	}
	if (bar0 < 0)
		return -errno;
	return pwrite(device, &value, 4, bar0 + reg) == 4 ? 0 : -(errno ? errno : EIO);
}

static int set_intx_disable(int disable)
{
	uint16_t cmd;
	int ret = config_command(&cmd, 0);

	if (ret)
		return ret;
	cmd = disable ? (cmd | CMD_INTX_DISABLE) : (cmd & ~CMD_INTX_DISABLE);
	return config_command(&cmd, 1);
}

/* Clear edu's interrupt status before the steps, PCI_COMMAND left as it was. */
MAYBE_UNUSED static void edu_clear(uint32_t ack)
{
	uint16_t cmd;

	if (config_command(&cmd, 0) == 0) {
		edu_write(ack, 0xffffffffu);
		config_command(&cmd, 1);
	}
}

/* PCI_COMMAND as a user's driver writes it: the whole register. */
MAYBE_UNUSED static int set_command(uint16_t value)
{
	return config_command(&value, 1);
}

/* A raw BAR0 write, PCI_COMMAND left as it is (EIO while memory decoding is off). */
MAYBE_UNUSED static int bar_write(uint32_t offset, uint32_t value)
{
	long long bar0 = region_offset(VFIO_PCI_BAR0_REGION_INDEX);

	if (bar0 < 0)
		return -errno;
	return pwrite(device, &value, 4, bar0 + offset) == 4 ? 0 : -(errno ? errno : EIO);
}

/* After a step that can change PCI_COMMAND: what it reads against the recording. */
MAYBE_UNUSED static int check_command(int number, uint16_t want)
{
	uint16_t cmd = 0;
	int ret = config_command(&cmd, 0);
	int bad = ret != 0 || cmd != want;

	printf("step %d: PCI_COMMAND reads %#06x, want %#06x: %s\n", number, cmd, want,
		bad ? "DIFFERENT" : "as recorded");
	return bad;
}

MAYBE_UNUSED static int reset_device(void)
{
	return ioctl(device, VFIO_DEVICE_RESET) < 0 ? -errno : 0;
}

MAYBE_UNUSED static int reopen_device(void)
{
	close(device);
	return open_device_fd() < 0 ? -errno : 0;
}

MAYBE_UNUSED static int write_eventfd(int slot)
{
	uint64_t one = 1;

	return write(efd[slot], &one, sizeof(one)) == sizeof(one) ? 0 : -errno;
}

/* VFIO_DEVICE_GET_IRQ_INFO: 0 with *flags and *count, or -errno. */
MAYBE_UNUSED static int irq_info(uint32_t index, uint32_t *flags, uint32_t *count)
{
	struct vfio_irq_info info = { .argsz = sizeof(info), .index = index };

	*flags = *count = 0;
	if (ioctl(device, VFIO_DEVICE_GET_IRQ_INFO, &info) < 0)
		return -errno;
	*flags = info.flags;
	*count = info.count;
	return 0;
}

/* A GET_IRQ_INFO step: what the kernel answered against the recording. */
MAYBE_UNUSED static int check_info(int number, int ret, uint32_t flags, uint32_t count,
		uint32_t want_flags, uint32_t want_count)
{
	int bad = ret == 0 && (flags != want_flags || count != want_count);

	if (ret == 0)
		printf("step %d: GET_IRQ_INFO got flags=%#x count=%u, want flags=%#x count=%u: %s\n",
			number, flags, count, want_flags, want_count, bad ? "DIFFERENT" : "as recorded");
	return bad;
}

static void read_counters(uint64_t *got)
{
	for (int i = 0; i < SLOTS; i++) {
		uint64_t value = 0;

		if (read(efd[i], &value, sizeof(value)) == sizeof(value))
			got[i] += value;
	}
}

static int below(const uint64_t *got, const uint64_t *want)
{
	for (int i = 0; i < SLOTS; i++)
		if (got[i] < want[i])
			return 1;
	return 0;
}

/* Late steps (an interrupt, the unmask eventfd's workqueue) get time to arrive. */
static void observe(uint64_t *got, const uint64_t *want, int late)
{
	memset(got, 0, SLOTS * sizeof(*got));
	if (!late) {
		read_counters(got);
		return;
	}
	usleep(SETTLE_US);
	read_counters(got);
	for (long waited = 0; below(got, want) && waited < CONVERGE_US; waited += POLL_US) {
		usleep(POLL_US);
		read_counters(got);
	}
	if (RECHECK) {
		usleep(SETTLE_US);
		read_counters(got);
	}
}

static int check(int number, const char *step, int ret, int want_ret, const char *want_name,
		const uint64_t *want, int late)
{
	uint64_t got[SLOTS];
	int bad = ret != want_ret;

	observe(got, want, late);
	for (int i = 0; i < SLOTS; i++)
		bad |= got[i] != want[i];
	printf("step %d: %s\n  got:  ", number, step);
	if (ret < 0)
		printf("errno %d (%s);", -ret, strerror(-ret));
	else
		printf("return %d;", ret);
	for (int i = 0; i < SLOTS; i++)
		printf(" e%d=%llu", i, (unsigned long long)got[i]);
	printf("\n  want: %s %s;", want_ret < 0 ? "errno" : "return", want_name);
	for (int i = 0; i < SLOTS; i++)
		printf(" e%d=%llu", i, (unsigned long long)want[i]);
	printf("\n  %s\n", bad ? "DIFFERENT" : "as recorded");
	return bad;
}

static int setup(void)
{
	struct rlimit limit;

	for (int i = 0; i < SLOTS; i++) {
		efd[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (efd[i] < 0)
			return fail("eventfd");
	}
	not_eventfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (not_eventfd < 0)
		return fail("/dev/null");
	/* As vfio-hil: the highest number the limit allows, which nothing holds. */
	if (getrlimit(RLIMIT_NOFILE, &limit) < 0)
		return fail("getrlimit");
	closed_fd = (int)((limit.rlim_cur < (1u << 20) ? limit.rlim_cur : (1u << 20)) - 1);
	close(closed_fd);
	if (open_group() < 0 || open_device_fd() < 0)
		return -1;
	/* Start clean, as vfio-hil does: every index disabled, INTx-disable clear. */
	for (uint32_t index = 0; index < VFIO_PCI_NUM_IRQS; index++)
		set_irqs(sizeof(struct vfio_irq_set), VFIO_IRQ_SET_ACTION_TRIGGER | VFIO_IRQ_SET_DATA_NONE,
			index, 0, 0, NULL, 0, 0);
	set_intx_disable(0);
	return 0;
}

int main(int argc, char **argv)
{
	int ret, bad = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s PCI_ADDRESS (e.g. 0000:00:03.0, bound to vfio-pci)\n", argv[0]);
		return 2;
	}
	address = argv[1];
	if (setup() < 0)
		return 2;
"""

MAIN_END = r"""	printf("%s\n", bad ? "some step differed from the recording"
			: "every step as recorded");
	return bad ? 1 : 0;
}
"""
