/* A device clock set wrong, for the fault suite: LD_PRELOAD this and every read of the wall clock in the
 * process (clock_gettime(CLOCK_REALTIME*), gettimeofday, time) is CONFROUTE_CLOCK_SKEW_S seconds off, while
 * the monotonic clocks stay true, as on a device whose clock was set wrong (NTP not reached yet, a drained
 * RTC battery). Debian's libfaketime 0.9.10 cannot do this for Python: with its monotonic clock left alone,
 * Python's time.sleep (clock_nanosleep, TIMER_ABSTIME) fails with EINVAL.
 * Built by tests/faults/test_faults.py with the system's C compiler: cc -shared -fPIC -o skewclock.so skewclock.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static long long skew_ns(void) {
    static long long skew;
    static int known;
    if (!known) {
        const char *text = getenv("CONFROUTE_CLOCK_SKEW_S");
        skew = text ? (long long)(atof(text) * 1e9) : 0;
        known = 1;
    }
    return skew;
}

static void shift(struct timespec *ts) {
    long long ns = (long long)ts->tv_sec * 1000000000LL + ts->tv_nsec + skew_ns();
    ts->tv_sec = (time_t)(ns / 1000000000LL);
    ts->tv_nsec = (long)(ns % 1000000000LL);
}

int clock_gettime(clockid_t id, struct timespec *ts) {
    static int (*real)(clockid_t, struct timespec *);
    if (!real) real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    int rc = real(id, ts);
    if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) shift(ts);
    return rc;
}

int gettimeofday(struct timeval *tv, void *tz) {
    struct timespec ts;
    (void)tz;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return -1;
    if (tv) {
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
    }
    return 0;
}

time_t time(time_t *out) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (out) *out = ts.tv_sec;
    return ts.tv_sec;
}
