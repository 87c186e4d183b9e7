/*
 * uAPI probe for tests/test_uapi_header.py.
 *
 * Prints, as "name value" lines, every constant, struct size, field offset,
 * field size and field signedness that vfio_hil/_uapi.py mirrors, taken from
 * whichever <linux/vfio.h> and <linux/iommufd.h> the include path finds.
 *
 *   header.version N             LINUX_VERSION_CODE of the headers
 *   const.NAME N                 a macro or enum value
 *   size.STRUCT N, align.STRUCT N
 *   offset.STRUCT.FIELD N, fsize.STRUCT.FIELD N, signed.STRUCT.FIELD 0|1
 *                                (signed: (T)-1 > (T)0 is false)
 *   flexoffset.STRUCT.FIELD N    a flexible array member (no size)
 *   missing.ITEM GUARD           ITEM not checkable: macro GUARD is undefined
 *
 * The cdev/iommufd items appeared in Linux 6.2 (iommufd.h) and 6.6 (cdev
 * ioctls), so they are guarded by their ioctl macros: older headers report
 * them as missing instead of failing to compile.  The Python test, not this
 * file, decides what the numbers should be.
 *
 * Build: gcc -std=gnu11 -Wall -Wextra [-I NEWER_INCLUDE] uapi_probe.c
 */
#include <stddef.h>
#include <stdio.h>
#include <linux/version.h>
#include <linux/vfio.h>
#if defined(__has_include)
#if __has_include(<linux/iommufd.h>)
#include <linux/iommufd.h>
#endif
#endif

#define CONST(name) printf("const.%s %lld\n", #name, (long long)(name))
#define MISSING(item, guard) printf("missing.%s %s\n", #item, #guard)
#define STRUCT(s)                                                            \
	printf("size.%s %zu\nalign.%s %zu\n", #s, sizeof(struct s), #s,        \
	       _Alignof(struct s))
#define MEMBER(s, f) (((struct s *)0)->f)
#define FIELD(s, f)                                                          \
	printf("offset.%s.%s %zu\nfsize.%s.%s %zu\nsigned.%s.%s %d\n", #s, #f, \
	       offsetof(struct s, f), #s, #f, sizeof(MEMBER(s, f)), #s, #f,    \
	       !((__typeof__(MEMBER(s, f)))-1 > (__typeof__(MEMBER(s, f)))0))
#define FLEX(s, f) printf("flexoffset.%s.%s %zu\n", #s, #f, offsetof(struct s, f))

static void vfio_constants(void)
{
	CONST(VFIO_API_VERSION);
	CONST(VFIO_TYPE);
	CONST(VFIO_BASE);

	CONST(VFIO_GET_API_VERSION);
	CONST(VFIO_CHECK_EXTENSION);
	CONST(VFIO_SET_IOMMU);
	CONST(VFIO_GROUP_GET_STATUS);
	CONST(VFIO_GROUP_SET_CONTAINER);
	CONST(VFIO_GROUP_UNSET_CONTAINER);
	CONST(VFIO_GROUP_GET_DEVICE_FD);
	CONST(VFIO_DEVICE_GET_INFO);
	CONST(VFIO_DEVICE_GET_REGION_INFO);
	CONST(VFIO_DEVICE_GET_IRQ_INFO);
	CONST(VFIO_DEVICE_SET_IRQS);
	CONST(VFIO_DEVICE_RESET);
	CONST(VFIO_DEVICE_FEATURE);

	CONST(VFIO_TYPE1_IOMMU);
	CONST(VFIO_TYPE1v2_IOMMU);
	CONST(VFIO_NOIOMMU_IOMMU);

	CONST(VFIO_GROUP_FLAGS_VIABLE);
	CONST(VFIO_GROUP_FLAGS_CONTAINER_SET);
	CONST(VFIO_DEVICE_FLAGS_RESET);
	CONST(VFIO_DEVICE_FLAGS_PCI);
	CONST(VFIO_REGION_INFO_FLAG_READ);
	CONST(VFIO_REGION_INFO_FLAG_WRITE);
	CONST(VFIO_REGION_INFO_FLAG_MMAP);
	CONST(VFIO_REGION_INFO_FLAG_CAPS);
	CONST(VFIO_IRQ_INFO_EVENTFD);
	CONST(VFIO_IRQ_INFO_MASKABLE);
	CONST(VFIO_IRQ_INFO_AUTOMASKED);
	CONST(VFIO_IRQ_INFO_NORESIZE);
	CONST(VFIO_IRQ_SET_DATA_NONE);
	CONST(VFIO_IRQ_SET_DATA_BOOL);
	CONST(VFIO_IRQ_SET_DATA_EVENTFD);
	CONST(VFIO_IRQ_SET_ACTION_MASK);
	CONST(VFIO_IRQ_SET_ACTION_UNMASK);
	CONST(VFIO_IRQ_SET_ACTION_TRIGGER);
	CONST(VFIO_IRQ_SET_DATA_TYPE_MASK);
	CONST(VFIO_IRQ_SET_ACTION_TYPE_MASK);

	/* enums, not macros: always present since they predate 6.1 */
	CONST(VFIO_PCI_BAR0_REGION_INDEX);
	CONST(VFIO_PCI_BAR5_REGION_INDEX);
	CONST(VFIO_PCI_ROM_REGION_INDEX);
	CONST(VFIO_PCI_CONFIG_REGION_INDEX);
	CONST(VFIO_PCI_VGA_REGION_INDEX);
	CONST(VFIO_PCI_NUM_REGIONS);
	CONST(VFIO_PCI_INTX_IRQ_INDEX);
	CONST(VFIO_PCI_MSI_IRQ_INDEX);
	CONST(VFIO_PCI_MSIX_IRQ_INDEX);
	CONST(VFIO_PCI_ERR_IRQ_INDEX);
	CONST(VFIO_PCI_REQ_IRQ_INDEX);
	CONST(VFIO_PCI_NUM_IRQS);
}

static void vfio_structs(void)
{
	STRUCT(vfio_group_status);
	FIELD(vfio_group_status, argsz);
	FIELD(vfio_group_status, flags);

	STRUCT(vfio_device_info);
	FIELD(vfio_device_info, argsz);
	FIELD(vfio_device_info, flags);
	FIELD(vfio_device_info, num_regions);
	FIELD(vfio_device_info, num_irqs);
	FIELD(vfio_device_info, cap_offset);

	STRUCT(vfio_region_info);
	FIELD(vfio_region_info, argsz);
	FIELD(vfio_region_info, flags);
	FIELD(vfio_region_info, index);
	FIELD(vfio_region_info, cap_offset);
	FIELD(vfio_region_info, size);
	FIELD(vfio_region_info, offset);

	STRUCT(vfio_irq_info);
	FIELD(vfio_irq_info, argsz);
	FIELD(vfio_irq_info, flags);
	FIELD(vfio_irq_info, index);
	FIELD(vfio_irq_info, count);

	STRUCT(vfio_irq_set);
	FIELD(vfio_irq_set, argsz);
	FIELD(vfio_irq_set, flags);
	FIELD(vfio_irq_set, index);
	FIELD(vfio_irq_set, start);
	FIELD(vfio_irq_set, count);
	FLEX(vfio_irq_set, data);
}

static void cdev_items(void)
{
#ifdef VFIO_DEVICE_BIND_IOMMUFD
	CONST(VFIO_DEVICE_BIND_IOMMUFD);
	STRUCT(vfio_device_bind_iommufd);
	FIELD(vfio_device_bind_iommufd, argsz);
	FIELD(vfio_device_bind_iommufd, flags);
	FIELD(vfio_device_bind_iommufd, iommufd);
	FIELD(vfio_device_bind_iommufd, out_devid);
#else
	MISSING(VFIO_DEVICE_BIND_IOMMUFD, VFIO_DEVICE_BIND_IOMMUFD);
	MISSING(vfio_device_bind_iommufd, VFIO_DEVICE_BIND_IOMMUFD);
#endif
#ifdef VFIO_DEVICE_ATTACH_IOMMUFD_PT
	CONST(VFIO_DEVICE_ATTACH_IOMMUFD_PT);
	STRUCT(vfio_device_attach_iommufd_pt);
	FIELD(vfio_device_attach_iommufd_pt, argsz);
	FIELD(vfio_device_attach_iommufd_pt, flags);
	FIELD(vfio_device_attach_iommufd_pt, pt_id);
#else
	MISSING(VFIO_DEVICE_ATTACH_IOMMUFD_PT, VFIO_DEVICE_ATTACH_IOMMUFD_PT);
	MISSING(vfio_device_attach_iommufd_pt, VFIO_DEVICE_ATTACH_IOMMUFD_PT);
#endif
#ifdef VFIO_DEVICE_DETACH_IOMMUFD_PT
	CONST(VFIO_DEVICE_DETACH_IOMMUFD_PT);
#else
	MISSING(VFIO_DEVICE_DETACH_IOMMUFD_PT, VFIO_DEVICE_DETACH_IOMMUFD_PT);
#endif
#ifdef IOMMUFD_TYPE
	CONST(IOMMUFD_TYPE);
#else
	MISSING(IOMMUFD_TYPE, IOMMUFD_TYPE);
#endif
#ifdef IOMMU_IOAS_ALLOC
	CONST(IOMMU_IOAS_ALLOC);
	STRUCT(iommu_ioas_alloc);
	FIELD(iommu_ioas_alloc, size);
	FIELD(iommu_ioas_alloc, flags);
	FIELD(iommu_ioas_alloc, out_ioas_id);
#else
	MISSING(IOMMU_IOAS_ALLOC, IOMMU_IOAS_ALLOC);
	MISSING(iommu_ioas_alloc, IOMMU_IOAS_ALLOC);
#endif
}

int main(void)
{
	printf("header.version %d\n", LINUX_VERSION_CODE);
	vfio_constants();
	vfio_structs();
	cdev_items();
	return 0;
}
