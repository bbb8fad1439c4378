/*
 * demo.c: gort's main demo (README's first command runs it via `make demo`).
 *
 * A CPU-bound parallel job: the Mandelbrot set at 1600x1200, split into
 * 4800 tiles, one goroutine per tile, rendered once on one processor and
 * once on every core.  It prints the speed-up, profiles the parallel run
 * with the CPU profiler, shows `gortprof top` of that profile, and ends with
 * a short goroutine dump of a small pipeline parked on channels.
 *
 *   demo [PROFILE [GORTPROF]]     defaults: demo.prof, gortprof from $PATH
 */
#include <gort.h>
#include <gort_prof.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define W 1600
#define H 1200
#define TILE 20 /* 80 x 60 tiles of 20x20 pixels */
#define MAXITER 1500

static uint16_t image[H][W];

typedef struct {
    int x0, y0;
    gort_waitgroup *wg;
} tile_t;

/* Escape time of one point.  Kept apart from render_tile so the profile
 * shows where the time goes. */
static __attribute__((noinline)) int escape(double cr, double ci)
{
    double zr = 0, zi = 0;
    int i = 0;
    while (i < MAXITER && zr * zr + zi * zi <= 4.0) {
        double t = zr * zr - zi * zi + cr;
        zi = 2 * zr * zi + ci;
        zr = t;
        i++;
    }
    return i;
}

static void render_tile(void *arg)
{
    tile_t *t = arg;
    for (int y = t->y0; y < t->y0 + TILE; y++)
        for (int x = t->x0; x < t->x0 + TILE; x++)
            image[y][x] = (uint16_t)escape(-2.2 + 3.2 * x / W, -1.2 + 2.4 * y / H);
    gort_wg_done(t->wg);
}

static tile_t tiles[(W / TILE) * (H / TILE)];

/* Renders the whole image with one goroutine per tile; returns seconds. */
static double render(void)
{
    gort_waitgroup wg = {0};
    int n = 0;
    int64_t t0 = gort_nanotime();
    for (int y = 0; y < H; y += TILE)
        for (int x = 0; x < W; x += TILE) {
            tiles[n] = (tile_t){x, y, &wg};
            gort_wg_add(&wg, 1);
            gort_go(render_tile, &tiles[n++]);
        }
    gort_wg_wait(&wg);
    return (double)(gort_nanotime() - t0) / 1e9;
}

static uint64_t checksum(void)
{
    uint64_t s = 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            s = s * 31 + image[y][x];
    return s;
}

/* A three-stage pipeline left parked so the dump has something to show. */
static gort_chan *stage_in, *stage_mid;
static void stage_square(void *arg)
{
    (void)arg;
    long v;
    while (gort_chan_recv(stage_in, &v)) {
        v *= v;
        gort_chan_send(stage_mid, &v);
    }
}
static void stage_sink(void *arg)
{
    (void)arg;
    long v;
    while (gort_chan_recv(stage_mid, &v))
        ;
}

typedef struct {
    const char *prof, *tool;
} opts_t;

static void demo_main(void *arg)
{
    opts_t *o = arg;
    int ncpu = gort_numcpu();

    gort_maxprocs(1);
    double t1 = render();
    uint64_t sum1 = checksum();
    memset(image, 0, sizeof image);

    gort_maxprocs(ncpu);
    int rc = gort_cpuprofile_start(o->prof, 100);
    if (rc < 0)
        fprintf(stderr, "demo: cannot start the CPU profile %s: %s\n", o->prof, strerror(-rc));
    double tn = render();
    if (rc == 0)
        gort_cpuprofile_stop();
    if (checksum() != sum1) {
        fprintf(stderr, "demo: images differ between 1 and %d procs\n", ncpu);
        exit(1);
    }

    printf("mandelbrot %dx%d, %d goroutines, checksum %016llx\n", W, H,
           (int)(sizeof tiles / sizeof tiles[0]), (unsigned long long)sum1);
    printf("  1 proc:   %.3f s\n", t1);
    printf("  %d procs:  %.3f s\n", ncpu, tn);
    printf("  speed-up: %.2fx on %d CPUs\n\n", t1 / tn, ncpu);
    fflush(stdout);

    if (rc == 0) {
        char cmd[4096];
        char exe[1024];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        exe[n > 0 ? n : 0] = 0;
        printf("$ gortprof top -n 8 %s\n", o->prof);
        fflush(stdout);
        snprintf(cmd, sizeof cmd, "'%s' top -n 8 '%s'", o->tool, o->prof);
        if (system(cmd) != 0)
            fprintf(stderr, "demo: %s failed (is gortprof built? make)\n", o->tool);
        printf("\n");
    }

    /* Park a small pipeline and show where everything waits. */
    stage_in = gort_chan_make(sizeof(long), 0);
    stage_mid = gort_chan_make(sizeof(long), 0);
    gort_go(stage_square, NULL);
    gort_go(stage_sink, NULL);
    long v = 7;
    gort_chan_send(stage_in, &v);
    gort_yield();
    printf("goroutine dump (a pipeline parked on its channels):\n\n");
    fflush(stdout);
    gort_dump(1);
    gort_chan_close(stage_in);
    gort_chan_close(stage_mid);
}

int main(int argc, char **argv)
{
    opts_t o = {argc > 1 ? argv[1] : "demo.prof", argc > 2 ? argv[2] : "gortprof"};
    return gort_main(demo_main, &o);
}
