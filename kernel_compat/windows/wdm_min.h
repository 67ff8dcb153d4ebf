/* SPDX-License-Identifier: MIT */
/* The few Windows kernel declarations kernel_compat's Windows hooks use, with
   the WDK's signatures, so the layer compiles without the WDK (a real driver
   includes <wdm.h> instead). Layer: kernel_compat (C99, x64 only). */
#ifndef RESMON_KC_WDM_MIN_H
#define RESMON_KC_WDM_MIN_H

#ifdef __cplusplus
extern "C" {
#endif

typedef unsigned char UCHAR, KIRQL;
typedef unsigned short USHORT;
typedef unsigned long ULONG;
typedef long NTSTATUS;
typedef unsigned long long ULONG64, ULONGLONG, SIZE_T, POOL_FLAGS;
typedef void* PVOID;
typedef const char* PCSTR;
typedef struct _PROCESSOR_NUMBER {
  USHORT Group;
  UCHAR Number;
  UCHAR Reserved;
} PROCESSOR_NUMBER, *PPROCESSOR_NUMBER;

#define NTKERNELAPI __declspec(dllimport)
#define POOL_FLAG_NON_PAGED 0x0000000000000040ULL
#define DISPATCH_LEVEL 2
#define DPFLTR_IHVDRIVER_ID 77
#define DPFLTR_ERROR_LEVEL 0
#define MANUALLY_INITIATED_CRASH 0xE2

NTKERNELAPI PVOID ExAllocatePool2(POOL_FLAGS Flags, SIZE_T NumberOfBytes, ULONG Tag);
NTKERNELAPI void ExFreePoolWithTag(PVOID P, ULONG Tag);
NTKERNELAPI ULONG KeGetCurrentProcessorNumberEx(PPROCESSOR_NUMBER ProcNumber);
NTKERNELAPI KIRQL KfRaiseIrql(KIRQL NewIrql);
NTKERNELAPI void KeLowerIrql(KIRQL NewIrql);
NTKERNELAPI ULONG64 KeQueryInterruptTimePrecise(ULONG64* QpcTimeStamp);
NTKERNELAPI ULONG DbgPrintEx(ULONG ComponentId, ULONG Level, PCSTR Format, ...);
NTKERNELAPI __declspec(noreturn) void KeBugCheckEx(ULONG BugCheckCode, ULONG64 P1, ULONG64 P2, ULONG64 P3,
                                                   ULONG64 P4);

/* x64: the IRQL is CR8 (the WDK's KeGetCurrentIrql is this inline function). */
static inline KIRQL KeGetCurrentIrql(void) {
  ULONG64 irql;
  __asm__ volatile("mov %%cr8, %0" : "=r"(irql));
  return (KIRQL)irql;
}

#ifdef __cplusplus
}
#endif

#endif /* RESMON_KC_WDM_MIN_H */
