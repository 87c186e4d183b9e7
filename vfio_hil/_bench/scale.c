/*
 * The C baseline for the scale benchmark: the same phases as the Python loop
 * of scale.py on one MSI-X index, over all N vectors at once:
 *
 *   enable   one SET_IRQS TRIGGER|EVENTFD over 0..N-1
 *   trigger  one SET_IRQS TRIGGER|DATA_NONE over 0..N-1
 *   read     read every eventfd (each must hold exactly 1)
 *   bool     one SET_IRQS TRIGGER|DATA_BOOL over 0..N-1, every byte 1
 *   read     read every eventfd again (each must hold exactly 1)
 *   disable  TRIGGER|DATA_NONE with count 0
 *
 * The device and the N eventfds are opened by the Python side and inherited,
 * so both loops exercise exactly the same kernel path; the eventfd numbers
 * arrive on stdin, one per line, so that any N fits.  ROUNDS times; each
 * round prints one line:
 *   enable=S trigger=S read=S bool=S bool_read=S disable=S bad=K
 * where bad counts eventfds that did not read exactly 1.
 *
 *   scale DEVICE_FD INDEX VECTORS ROUNDS < EVENTFDS
 */
#include <errno.h>
#include <linux/vfio.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static int set_irqs(int device, struct vfio_irq_set *set, const char *what)
{
	if (ioctl(device, VFIO_DEVICE_SET_IRQS, set) < 0) {
		fprintf(stderr, "VFIO_DEVICE_SET_IRQS (%s): %s\n", what, strerror(errno));
		return -1;
	}
	return 0;
}

/* Read every eventfd; the number of them that did not hold exactly 1. */
static long read_all(const int *fds, long n)
{
	uint64_t counter;
	long bad = 0;

	for (long i = 0; i < n; i++) {
		if (read(fds[i], &counter, sizeof(counter)) != sizeof(counter) || counter != 1)
			bad++;
	}
	return bad;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: %s DEVICE_FD INDEX VECTORS ROUNDS < EVENTFDS\n", argv[0]);
		return 2;
	}
	int device = atoi(argv[1]);
	uint32_t index = (uint32_t)atoi(argv[2]);
	long n = atol(argv[3]), rounds = atol(argv[4]);
	if (n < 1 || rounds < 1) {
		fprintf(stderr, "VECTORS and ROUNDS must be at least 1\n");
		return 2;
	}
	int *fds = calloc(n, sizeof(*fds));
	size_t fds_size = sizeof(struct vfio_irq_set) + n * sizeof(int32_t);
	size_t bools_size = sizeof(struct vfio_irq_set) + n;
	struct vfio_irq_set *enable = calloc(1, fds_size);
	struct vfio_irq_set *bools = calloc(1, bools_size);
	if (!fds || !enable || !bools) {
		fprintf(stderr, "out of memory\n");
		return 1;
	}
	for (long i = 0; i < n; i++) {
		if (scanf("%d", &fds[i]) != 1) {
			fprintf(stderr, "stdin gave %ld eventfds of %ld\n", i, n);
			return 2;
		}
	}
	*enable = (struct vfio_irq_set){
		.argsz = fds_size,
		.flags = VFIO_IRQ_SET_ACTION_TRIGGER | VFIO_IRQ_SET_DATA_EVENTFD,
		.index = index,
		.start = 0,
		.count = n,
	};
	memcpy(enable->data, fds, n * sizeof(int32_t));
	*bools = (struct vfio_irq_set){
		.argsz = bools_size,
		.flags = VFIO_IRQ_SET_ACTION_TRIGGER | VFIO_IRQ_SET_DATA_BOOL,
		.index = index,
		.start = 0,
		.count = n,
	};
	memset(bools->data, 1, n);
	struct vfio_irq_set trigger = {
		.argsz = sizeof(trigger),
		.flags = VFIO_IRQ_SET_ACTION_TRIGGER | VFIO_IRQ_SET_DATA_NONE,
		.index = index,
		.start = 0,
		.count = n,
	};
	struct vfio_irq_set disable = trigger;
	disable.count = 0;

	for (long r = 0; r < rounds; r++) {
		double t0, t1, t2, t3, t4, t5, t6;
		long bad;

		t0 = now();
		if (set_irqs(device, enable, "enable") < 0)
			return 1;
		t1 = now();
		if (set_irqs(device, &trigger, "trigger") < 0)
			return 1;
		t2 = now();
		bad = read_all(fds, n);
		t3 = now();
		if (set_irqs(device, bools, "bool trigger") < 0)
			return 1;
		t4 = now();
		bad += read_all(fds, n);
		t5 = now();
		if (set_irqs(device, &disable, "disable") < 0)
			return 1;
		t6 = now();
		printf("enable=%.9f trigger=%.9f read=%.9f bool=%.9f bool_read=%.9f disable=%.9f "
		       "bad=%ld\n",
		       t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5, bad);
	}
	return 0;
}
