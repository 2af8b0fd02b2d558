/* A stand-in for the CUDA driver (libcuda.so.1) that the CUDA-driver tests build with the C compiler: each -D flag sets what
 * it answers, so every outcome GpuNet reports (a stub, a failing cuInit, an old driver, no device, a usable device) can be
 * produced on a machine without a GPU. Only the entry points GpuNet's probe and ILGPU's device enumeration call exist. */
#include <string.h>

#ifndef INIT_RESULT
#define INIT_RESULT 0
#endif
#ifndef DRIVER_VERSION
#define DRIVER_VERSION 13000
#endif
#ifndef DEVICE_COUNT
#define DEVICE_COUNT 1
#endif
#ifndef CC_MAJOR
#define CC_MAJOR 9
#endif
#ifndef CC_MINOR
#define CC_MINOR 0
#endif

int cuInit(unsigned int flags) { (void)flags; return INIT_RESULT; }
int cuDriverGetVersion(int *version) { *version = DRIVER_VERSION; return INIT_RESULT; }
int cuDeviceGetCount(int *count) { *count = INIT_RESULT == 0 ? DEVICE_COUNT : 0; return INIT_RESULT; }
int cuDeviceGet(int *device, int ordinal) { *device = ordinal; return ordinal < DEVICE_COUNT ? 0 : 101; }

int cuDeviceGetName(char *name, int length, int device)
{
    (void)device;
    strncpy(name, "GpuNet fake GPU", (size_t)length);
    return 0;
}

int cuDeviceTotalMem_v2(unsigned long *bytes, int device) { (void)device; *bytes = 1UL << 30; return 0; }

int cuDeviceGetAttribute(int *value, int attribute, int device)
{
    (void)device;
    switch (attribute)
    {
    case 1: *value = 1024; break;             /* max threads per block */
    case 2: case 3: *value = 1024; break;     /* max block x, y */
    case 4: *value = 64; break;               /* max block z */
    case 5: *value = 2147483647; break;       /* max grid x */
    case 6: case 7: *value = 65535; break;    /* max grid y, z */
    case 8: *value = 49152; break;            /* shared memory per block */
    case 10: *value = 32; break;              /* warp size */
    case 16: *value = 2; break;               /* multiprocessors */
    case 35: *value = 0; break;               /* TCC driver */
    case 39: *value = 2048; break;            /* max threads per multiprocessor */
    case 75: *value = CC_MAJOR; break;
    case 76: *value = CC_MINOR; break;
    default: *value = 1; break;
    }
    return 0;
}

int cuGetErrorName(int error, const char **name)
{
    *name = error == 34 ? "CUDA_ERROR_STUB_LIBRARY" : error == 100 ? "CUDA_ERROR_NO_DEVICE" : error == 999 ? "CUDA_ERROR_UNKNOWN" : "CUDA_ERROR_FAKE";
    return 0;
}

int cuGetErrorString(int error, const char **text) { return cuGetErrorName(error, text); }
