/*
 * The C baseline for the loopback benchmark: N times, trigger one vector with
 * VFIO_DEVICE_SET_IRQS (ACTION_TRIGGER | DATA_NONE) and read its eventfd.
 * The device and eventfd are opened by the Python side and inherited, so both
 * loops exercise exactly the same kernel path.
 *
 *   loopback DEVICE_FD EVENTFD INDEX VECTOR ITERATIONS
 * prints: iterations=N seconds=S signals=K
 */
#include <linux/vfio.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: %s DEVICE_FD EVENTFD INDEX VECTOR ITERATIONS\n", argv[0]);
		return 2;
	}
	int device = atoi(argv[1]), efd = atoi(argv[2]);
	long iterations = atol(argv[5]);
	struct vfio_irq_set set = {
		.argsz = sizeof(set),
		.flags = VFIO_IRQ_SET_ACTION_TRIGGER | VFIO_IRQ_SET_DATA_NONE,
		.index = (uint32_t)atoi(argv[3]),
		.start = (uint32_t)atoi(argv[4]),
		.count = 1,
	};
	uint64_t counter, signals = 0;
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < iterations; i++) {
		if (ioctl(device, VFIO_DEVICE_SET_IRQS, &set) < 0) {
			perror("VFIO_DEVICE_SET_IRQS");
			return 1;
		}
		if (read(efd, &counter, sizeof(counter)) == sizeof(counter))
			signals += counter;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("iterations=%ld seconds=%.9f signals=%llu\n", iterations,
	       (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
	       (unsigned long long)signals);
	return 0;
}
