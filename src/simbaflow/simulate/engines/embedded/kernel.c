/*
 * kernel.c -- the embedded engine's event loop, compiled once with the system C
 * compiler (see kernel.py) and called once per run.
 *
 * Python builds the model (netlist, topologies, forms) and, when the run first
 * meets a discrete state, its system matrix M, guards, recorded forms and the
 * input forms of sampled blocks (callback `evaluate`, cached here by key).
 * Everything else happens here: exact propagation of dz/dt = M z between events
 * (Taylor series, or exact propagators exp(M 2^p) for stiff intervals), guard
 * checks and root location, mode decisions, scheduled instants (carriers, steps,
 * piecewise-linear corners, sample instants, C Code announcements), sampled
 * blocks (Zero Order Hold, Discrete Transfer Function, Discrete PID), Average's
 * history and window fits, C Code blocks called through function pointers, and
 * recording. Python is called back only for a discrete state met for the first
 * time and for the matrix exponentials of stiff intervals (scipy's expm).
 *
 * The algorithm is the one documented in solver.py; names follow it. A fault
 * (SIGSEGV, SIGFPE, SIGBUS, SIGILL) inside this code or a C Code block ends the
 * run with an error code instead of the process.
 *
 * Adding a block with event behaviour: give it a kind below, its parameters in
 * `dpar`/`ipar` and its run-time state in `rt` (blocks.py, `kernel_spec`), and
 * handle the kind in block_key / block_breakpoint / block_snap / block_sample.
 */
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REL_TOL 1e-11
#define LOCKED_TOL 1e-6
#define MAX_TERMS 40
#define NS 8 /* GUARD_SAMPLES */
#define NT (NS + 1)
#define MAX_EVENTS_PER_INSTANT 200
#define LADDER_OFFSET 1100
#define LADDER_SIZE 2200

enum { K_NONE, K_STEP, K_SQUARE, K_SLOPED, K_PWL, K_ZCD, K_ZOH, K_DTF, K_DPID, K_CCODE, K_AVERAGE };

enum {
    SF_OK = 0, SF_PYTHON = 1, SF_CHATTER = 2, SF_INSTANT = 3, SF_STUCK = 4, SF_SIGNAL = 5, SF_MEMORY = 6
};

typedef void (*calc_fn)(double *, double *, double, double);
typedef void (*void_fn)(void);
typedef double (*next_fn)(double, double);

/* Filled by the evaluate callback: dense row-major arrays owned by Python. */
typedef struct {
    const double *m;      /* nz x nz */
    const double *guards; /* ng x nz */
    const double *record; /* nr x nz */
    const double *inputs; /* ni x nz: input forms of sampled and C Code blocks */
    const double *extra;  /* 3 per Average block x nz: its input In, T In', T^2 In'' */
    double rate;
    int32_t cacheable;
    int32_t pyslot;
    const int32_t *key; /* set by the kernel: the discrete state asked for */
    int32_t nkey;
} EvalOut;

typedef int (*evaluate_cb)(EvalOut *out);
typedef int (*expm_cb)(int32_t pyslot, double dt, double *out);
typedef int (*expm_matrix_cb)(const double *m, double dt, double *out);
typedef int (*poll_cb)(void);

typedef struct {
    int32_t nz, ng, nr, ni, one, min_terms;
    int32_t npairs;
    const int32_t *pair_gate, *pair_diode;
    int32_t nblocks;
    const int32_t *kind, *state0, *n_in, *in0, *n_out, *dpar_off, *rt_off, *ipar_off;
    const double *dpar;
    const int32_t *ipar;
    void **cc_calc, **cc_next; /* per block (NULL unless C Code) */
    double end_time, max_step, output_step; /* output_step <= 0: record at events */
    int32_t n_extra; /* rows of EvalOut.extra */
    /* shared with Python */
    double *z, *rt, *io; /* io[0] = t */
    int8_t *gstate;
    evaluate_cb evaluate;
    expm_cb expm;
    expm_matrix_cb expm_matrix;
    poll_cb poll;
} Model;

/* Recorded rows (time, then each signal) in chunks: no reallocation, little slack, and
 * sf_take frees each chunk as soon as it is copied out. */
#define CHUNK_ROWS 16384

typedef struct {
    double **chunks;
    int64_t n, nchunks;
    int64_t events, guard_events, evaluations, volatile_evaluations, stiff_intervals;
    double fail_t;
    int32_t fail_signal, fail_block;
} Result;

/* --- sparse rows ---------------------------------------------------------------- */
typedef struct {
    int32_t n, *start, *col;
    double *val;
} Csr;

static int csr_build(Csr *c, const double *dense, int rows, int cols) {
    int nnz = 0;
    for (int i = 0; i < rows * cols; i++) nnz += dense[i] != 0.0;
    c->n = rows;
    c->start = malloc(sizeof(int32_t) * (rows + 1));
    c->col = malloc(sizeof(int32_t) * (nnz ? nnz : 1));
    c->val = malloc(sizeof(double) * (nnz ? nnz : 1));
    if (!c->start || !c->col || !c->val) return -1;
    int k = 0;
    for (int i = 0; i < rows; i++) {
        c->start[i] = k;
        for (int j = 0; j < cols; j++) {
            double v = dense[(int64_t)i * cols + j];
            if (v != 0.0) { c->col[k] = j; c->val[k] = v; k++; }
        }
    }
    c->start[rows] = k;
    return 0;
}

static void csr_free(Csr *c) {
    free(c->start); free(c->col); free(c->val);
    c->start = NULL; c->col = NULL; c->val = NULL;
}

static inline double csr_dot(const Csr *c, int i, const double *z) {
    double s = 0.0;
    for (int k = c->start[i]; k < c->start[i + 1]; k++) s += c->val[k] * z[c->col[k]];
    return s;
}

static inline double csr_absdot(const Csr *c, int i, const double *z) {
    double s = 0.0;
    for (int k = c->start[i]; k < c->start[i + 1]; k++) s += fabs(c->val[k]) * fabs(z[c->col[k]]);
    return s;
}

/* --- evaluations -------------------------------------------------------------------- */
typedef struct {
    Csr m, guards, rates, record, inputs, extra;
    const double *mdense; /* Python's, for propagators */
    double rate;
    int32_t pyslot, cacheable;
    double **ladder; /* exp(M 2^p), index p + LADDER_OFFSET */
    int32_t *key;
} Eval;

static void eval_free(Eval *e) {
    csr_free(&e->m); csr_free(&e->guards); csr_free(&e->rates); csr_free(&e->record); csr_free(&e->inputs);
    csr_free(&e->extra);
    if (e->ladder) {
        for (int i = 0; i < LADDER_SIZE; i++) free(e->ladder[i]);
        free(e->ladder);
        e->ladder = NULL;
    }
    free(e->key);
    e->key = NULL;
}

typedef struct {
    const Model *md;
    Result *res;
    int nz, ng, nkey;
    double t;
    Eval **slots;
    int nslots, capslots;
    int32_t *table; /* open addressing, slot index or -1 */
    int tcap;
    Eval volatile_eval[2];
    int volatile_next;
    Eval *now;
    int32_t *key;
    int8_t *locked;
    double *values, *tol, *slopes, *scratch, *scratch2, *z0, *terms, *samples, *znew, *step, *pre, *post;
    int n_terms, stiff, have_samples;
    double h;
    int error;
    struct Average *averages; /* per block (used by K_AVERAGE only) */
} Run;

/* --- fault guard ---------------------------------------------------------------------- */
static __thread sigjmp_buf *guard_jump;
static __thread volatile sig_atomic_t guard_active;
static __thread volatile int guard_signal;
static struct sigaction previous_action[32];

static void on_fault(int sig, siginfo_t *info, void *context) {
    if (guard_active && guard_jump) {
        guard_active = 0;
        guard_signal = sig;
        siglongjmp(*guard_jump, 1);
    }
    /* Not ours: hand over to whoever was there before (Python's faulthandler, or the default). */
    struct sigaction *old = &previous_action[sig];
    if (old->sa_flags & SA_SIGINFO) {
        if (old->sa_sigaction) { old->sa_sigaction(sig, info, context); return; }
    } else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN && old->sa_handler) {
        old->sa_handler(sig);
        return;
    }
    sigaction(sig, old, NULL);
    raise(sig);
}

int sf_install_handlers(void) {
    /* (Re-)install when someone (faulthandler) replaced ours; theirs is then chained. */
    int signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL};
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_fault;
    action.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    for (int i = 0; i < 4; i++) {
        struct sigaction current;
        if (sigaction(signals[i], NULL, &current) != 0) return -1;
        if ((current.sa_flags & SA_SIGINFO) && current.sa_sigaction == on_fault) continue;
        if (sigaction(signals[i], &action, &previous_action[signals[i]]) != 0) return -1;
    }
    return 0;
}

/* A stack of its own for the handler, per thread, so a C Code block that overflows its
 * stack (runaway recursion) is caught too. Kept for the thread's life. */
static __thread void *alternate_stack;

static void ensure_alternate_stack(void) {
    stack_t current;
    if (sigaltstack(NULL, &current) == 0 && !(current.ss_flags & SS_DISABLE)) return; /* one is set */
    if (!alternate_stack) alternate_stack = malloc(1 << 16);
    if (!alternate_stack) return;
    stack_t stack = {.ss_sp = alternate_stack, .ss_size = 1 << 16, .ss_flags = 0};
    sigaltstack(&stack, NULL);
}

/* Calls into Python run with the guard off: a fault there is not ours to catch. A
 * callback clears io[1] as its last act, so one that raised before its body ran (a
 * pending Python signal handler, e.g. a run's time limit) still counts as failed. */
#define PY_CALL(expr) \
    (guard_active = 0, r->md->io[1] = 1.0, _py_rc = (expr), guard_active = 1, _py_rc || r->md->io[1] != 0.0)
static __thread int _py_rc;

/* --- helpers -------------------------------------------------------------------------- */
static inline int same_instant(double a, double b) {
    double m = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
    if (m < 1.0) m = 1.0;
    return fabs(a - b) <= 1e-12 * m + 1e-15;
}

static inline double pymin(double a, double b) { return b < a ? b : a; }

static inline const double *DP(const Run *r, int b) { return r->md->dpar + r->md->dpar_off[b]; }
static inline double *RT(const Run *r, int b) { return r->md->rt + r->md->rt_off[b]; }

/* Periodic waves: dpar = [frequency, phase, n_edges, edges..., start..., slope...]. */
static void periodic_find(const double *p, double t, double *n_out, int *k_out, double *r_out) {
    double f = p[0], phase = p[1];
    int ne = (int)p[2];
    const double *edges = p + 3;
    double u = t * f + phase;
    double n = floor(u);
    double r = u - n;
    const double tolerance = 1e-9;
    if (r > 1.0 - tolerance) { n = n + 1; r = 0.0; }
    for (int k = 0; k < ne - 1; k++) {
        if (fabs(r - edges[k + 1]) < tolerance) r = edges[k + 1];
        if (edges[k] <= r && r < edges[k + 1]) { *n_out = n; *k_out = k; *r_out = r; return; }
    }
    *n_out = n; *k_out = ne - 2; *r_out = r;
}

/* Piecewise linear: dpar = [n, times..., values..., slopes (n + 1)...]; segment = #times <= t. */
static int pwl_segment(const double *p, double t) {
    int n = (int)p[0];
    const double *times = p + 1;
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (times[mid] <= t) lo = mid + 1; else hi = mid;
    }
    return lo;
}

static int32_t block_key(const Run *r, int b) {
    const Model *md = r->md;
    const double *p = DP(r, b);
    switch (md->kind[b]) {
    case K_STEP: return r->t >= p[0];
    case K_SQUARE:
    case K_SLOPED: { double n, rr; int k; periodic_find(p, r->t, &n, &k, &rr); return k; }
    case K_PWL: return pwl_segment(p, r->t);
    case K_ZCD: return (int32_t)RT(r, b)[0];
    default: return 0;
    }
}

static int has_key(int kind) { return kind == K_STEP || kind == K_SQUARE || kind == K_SLOPED || kind == K_PWL || kind == K_ZCD; }

static uint64_t hash_key(const int32_t *key, int n) {
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < n; i++) { h ^= (uint32_t)key[i]; h *= 1099511628211ULL; }
    return h;
}

static int eval_setup(Run *r, Eval *e, const EvalOut *out) {
    const Model *md = r->md;
    int nz = md->nz;
    memset(e, 0, sizeof *e);
    if (csr_build(&e->m, out->m, nz, nz) || csr_build(&e->guards, out->guards, md->ng, nz)
        || csr_build(&e->record, out->record, md->nr, nz) || csr_build(&e->inputs, out->inputs, md->ni, nz)
        || csr_build(&e->extra, out->extra, md->n_extra, nz))
        return -1;
    /* d(guard)/dt = guards @ M @ z: rows of guards @ M, as numpy computes it (dense). */
    double *rates = calloc((size_t)(md->ng ? md->ng : 1) * nz, sizeof(double));
    if (!rates) return -1;
    for (int g = 0; g < md->ng; g++)
        for (int k = e->guards.start[g]; k < e->guards.start[g + 1]; k++) {
            double v = e->guards.val[k];
            const double *row = out->m + (int64_t)e->guards.col[k] * nz;
            for (int j = 0; j < nz; j++) rates[(int64_t)g * nz + j] += v * row[j];
        }
    int rc = csr_build(&e->rates, rates, md->ng, nz);
    free(rates);
    if (rc) return -1;
    e->mdense = out->m;
    e->rate = out->rate;
    e->pyslot = out->pyslot;
    e->cacheable = out->cacheable;
    return 0;
}

static int evaluate(Run *r) {
    const Model *md = r->md;
    int8_t *gs = md->gstate;
    for (int p = 0; p < md->npairs; p++)
        if (gs[md->pair_gate[p]]) gs[md->pair_diode[p]] = 0;
    int n = 0;
    for (int g = 0; g < md->ng; g++) r->key[n++] = gs[g];
    for (int b = 0; b < md->nblocks; b++)
        if (has_key(md->kind[b])) r->key[n++] = block_key(r, b);
    uint64_t h = hash_key(r->key, n);
    int mask = r->tcap - 1;
    int pos = (int)(h & (uint64_t)mask);
    while (r->table[pos] >= 0) {
        Eval *e = r->slots[r->table[pos]];
        if (memcmp(e->key, r->key, sizeof(int32_t) * n) == 0) { r->now = e; return 0; }
        pos = (pos + 1) & mask;
    }
    EvalOut out;
    memset(&out, 0, sizeof out);
    md->io[0] = r->t;
    out.key = r->key;
    out.nkey = n;
    if (PY_CALL(md->evaluate(&out))) return SF_PYTHON;
    r->res->evaluations++;
    if (!out.cacheable) {
        Eval *e = &r->volatile_eval[r->volatile_next];
        r->volatile_next ^= 1;
        eval_free(e);
        if (eval_setup(r, e, &out)) return SF_MEMORY;
        e->key = malloc(sizeof(int32_t) * (n ? n : 1));
        if (!e->key) return SF_MEMORY;
        memcpy(e->key, r->key, sizeof(int32_t) * n);
        r->res->volatile_evaluations++;
        r->now = e;
        return 0;
    }
    Eval *e = calloc(1, sizeof(Eval));
    if (!e || eval_setup(r, e, &out)) return SF_MEMORY;
    e->key = malloc(sizeof(int32_t) * (n ? n : 1));
    if (!e->key) return SF_MEMORY;
    memcpy(e->key, r->key, sizeof(int32_t) * n);
    if (r->nslots == r->capslots) {
        r->capslots = r->capslots ? 2 * r->capslots : 64;
        Eval **s = realloc(r->slots, sizeof(Eval *) * r->capslots);
        if (!s) return SF_MEMORY;
        r->slots = s;
    }
    r->slots[r->nslots] = e;
    r->table[pos] = r->nslots++;
    if (2 * r->nslots > r->tcap) {
        int cap = 2 * r->tcap;
        int32_t *table = malloc(sizeof(int32_t) * cap);
        if (!table) return SF_MEMORY;
        for (int i = 0; i < cap; i++) table[i] = -1;
        for (int s = 0; s < r->nslots; s++) {
            int q = (int)(hash_key(r->slots[s]->key, n) & (uint64_t)(cap - 1));
            while (table[q] >= 0) q = (q + 1) & (cap - 1);
            table[q] = s;
        }
        free(r->table);
        r->table = table;
        r->tcap = cap;
    }
    r->now = e;
    return 0;
}

/* exp(M 2^exponent) of the evaluation, cached when the evaluation is. */
static const double *propagator(Run *r, Eval *e, int exponent, int *rc) {
    int nz = r->nz;
    int index = exponent + LADDER_OFFSET;
    if (index < 0 || index >= LADDER_SIZE) { *rc = SF_STUCK; return NULL; }
    if (!e->ladder) {
        e->ladder = calloc(LADDER_SIZE, sizeof(double *));
        if (!e->ladder) { *rc = SF_MEMORY; return NULL; }
    }
    if (!e->ladder[index]) {
        double *matrix = malloc(sizeof(double) * nz * nz);
        if (!matrix) { *rc = SF_MEMORY; return NULL; }
        if (PY_CALL(r->md->expm(e->pyslot, ldexp(1.0, exponent), matrix))) { free(matrix); *rc = SF_PYTHON; return NULL; }
        e->ladder[index] = matrix;
    }
    return e->ladder[index];
}

static void matvec(const double *a, const double *x, double *y, int n) {
    for (int i = 0; i < n; i++) {
        double s = 0.0;
        const double *row = a + (int64_t)i * n;
        for (int j = 0; j < n; j++) s += row[j] * x[j];
        y[i] = s;
    }
}

/* --- intervals --------------------------------------------------------------------------- */
static const double TAUS[NT] = {0.0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0};

/* TAUS[j]^k, as numpy's power gives them (pow), computed once. */
static double tau_powers[NT][MAX_TERMS + 1];
static int tau_powers_ready;

static void init_tau_powers(void) {
    for (int j = 0; j < NT; j++)
        for (int k = 0; k <= MAX_TERMS; k++) tau_powers[j][k] = pow(TAUS[j], k);
    tau_powers_ready = 1;
}

static int interval_begin(Run *r) {
    Eval *e = r->now;
    int nz = r->nz;
    double rho = e->rate * r->h;
    r->stiff = !(rho <= 4.0);
    r->have_samples = 0;
    if (!r->stiff) {
        int n_terms = 1;
        double bound = rho;
        while ((bound > 1e-18 || n_terms < r->md->min_terms) && n_terms < MAX_TERMS) {
            n_terms += 1;
            bound *= rho / n_terms;
        }
        r->n_terms = n_terms;
        /* terms[k] = h^k M^k z0 / k! */
        memcpy(r->terms, r->z0, sizeof(double) * nz);
        for (int k = 1; k <= n_terms; k++) {
            const double *prev = r->terms + (int64_t)(k - 1) * nz;
            double *cur = r->terms + (int64_t)k * nz;
            double factor = r->h / k;
            for (int i = 0; i < nz; i++) cur[i] = csr_dot(&e->m, i, prev) * factor;
        }
    }
    return 0;
}

/* exp(M duration) z under evaluation e, as a product of its cached powers of two. */
static int walk_with(Run *r, Eval *e, double h, const double *z, double duration, double *out) {
    int nz = r->nz, rc = 0;
    memcpy(out, z, sizeof(double) * nz);
    while (duration > 1e-16 * h) {
        int exponent;
        frexp(duration, &exponent);
        exponent -= 1;
        const double *p = propagator(r, e, exponent, &rc);
        if (!p) return rc;
        matvec(p, out, r->scratch2, nz);
        memcpy(out, r->scratch2, sizeof(double) * nz);
        duration -= ldexp(1.0, exponent);
    }
    return 0;
}

static int walk(Run *r, const double *z, double duration, double *out) {
    return walk_with(r, r->now, r->h, z, duration, out);
}

/* z(t0 + tau h) into out. */
static int interval_at(Run *r, double tau, double *out) {
    int nz = r->nz;
    if (!r->stiff) {
        for (int i = 0; i < nz; i++) out[i] = 0.0;
        for (int k = 0; k <= r->n_terms; k++) {
            double w = pow(tau, k);
            const double *term = r->terms + (int64_t)k * nz;
            for (int i = 0; i < nz; i++) out[i] += w * term[i];
        }
        return 0;
    }
    if (!r->have_samples) return walk(r, r->z0, tau * r->h, out);
    int j = (int)(tau * NS);
    if (j > NS) j = NS;
    return walk(r, r->samples + (int64_t)j * nz, (tau - TAUS[j]) * r->h, out);
}

/* States at TAUS into samples (NT x nz). */
static int interval_many(Run *r) {
    int nz = r->nz;
    if (!r->stiff) {
        for (int j = 0; j < NT; j++) {
            double *col = r->samples + (int64_t)j * nz;
            for (int i = 0; i < nz; i++) col[i] = 0.0;
            for (int k = 0; k <= r->n_terms; k++) {
                double w = tau_powers[j][k];
                const double *term = r->terms + (int64_t)k * nz;
                for (int i = 0; i < nz; i++) col[i] += w * term[i];
            }
        }
        return 0;
    }
    r->res->stiff_intervals++;
    if (PY_CALL(r->md->expm(r->now->pyslot, r->h / NS, r->step))) return SF_PYTHON;
    memcpy(r->samples, r->z0, sizeof(double) * nz);
    for (int j = 1; j < NT; j++) matvec(r->step, r->samples + (int64_t)(j - 1) * nz, r->samples + (int64_t)j * nz, nz);
    r->have_samples = 1;
    return 0;
}

static double poly(const double *c, int n, double tau) {
    /* c[0..n] ascending; Horner from the highest. */
    double v = 0.0;
    for (int k = n; k >= 0; k--) v = v * tau + c[k];
    return v;
}

static double bracketed_root(const double *c, int n, double lo, double hi, double f_lo, double f_hi) {
    int side = 0;
    for (int it = 0; it < 200; it++) {
        double mid = hi - f_hi * (hi - lo) / (f_hi - f_lo);
        if (!(lo < mid && mid < hi)) {
            mid = 0.5 * (lo + hi);
            if (!(lo < mid && mid < hi)) break;
        }
        double f_mid = poly(c, n, mid);
        if (f_mid == 0.0) return mid;
        if (f_mid > 0.0) {
            lo = mid; f_lo = f_mid;
            if (side == 1) f_hi *= 0.5;
            side = 1;
        } else {
            hi = mid; f_hi = f_mid;
            if (side == -1) f_lo *= 0.5;
            side = -1;
        }
        double m = fabs(hi) > 1.0 ? fabs(hi) : 1.0;
        if (hi - lo <= 4e-16 * m) break;
    }
    return hi;
}

static int guard_root(Run *r, int g, double lo, double hi, double *tau_out) {
    Eval *e = r->now;
    int nz = r->nz, rc;
    const Csr *c = &e->guards;
    if (!r->stiff) {
        double coefficients[MAX_TERMS + 1];
        for (int k = 0; k <= r->n_terms; k++) coefficients[k] = csr_dot(c, g, r->terms + (int64_t)k * nz);
        double f_lo = poly(coefficients, r->n_terms, lo), f_hi = poly(coefficients, r->n_terms, hi);
        if (f_lo <= 0.0) { *tau_out = lo; return 0; }
        if (f_hi >= 0.0) { *tau_out = hi; return 0; }
        *tau_out = bracketed_root(coefficients, r->n_terms, lo, hi, f_lo, f_hi);
        return 0;
    }
    double *z = r->scratch;
    if ((rc = interval_at(r, lo, z))) return rc;
    if (csr_dot(c, g, z) <= 0.0) { *tau_out = lo; return 0; }
    double elapsed = 0.0, width = (hi - lo) * r->h;
    int exponent;
    frexp(width, &exponent);
    exponent -= 1;
    int finest = exponent - 60;
    double *candidate = r->post; /* free here */
    while (exponent >= finest) {
        double step = ldexp(1.0, exponent);
        if (elapsed + step <= width) {
            const double *p = propagator(r, e, exponent, &rc);
            if (!p) return rc;
            matvec(p, z, candidate, nz);
            if (csr_dot(c, g, candidate) > 0.0) {
                memcpy(z, candidate, sizeof(double) * nz);
                elapsed = elapsed + step;
            }
        }
        exponent -= 1;
    }
    double tau = lo + (elapsed + ldexp(1.0, finest)) / r->h;
    *tau_out = tau < hi ? tau : hi;
    return 0;
}

/* --- modes ---------------------------------------------------------------------------------- */
/* Flip the first guard negative (or zero and falling); 1 if one flipped. */
static int decide(Run *r, const int8_t *locked) {
    Eval *e = r->now;
    const double *z = r->md->z;
    for (int g = 0; g < r->ng; g++) {
        double value = csr_dot(&e->guards, g, z);
        double tolerance = REL_TOL * csr_absdot(&e->guards, g, z);
        if (value < -tolerance || (value <= tolerance && csr_dot(&e->rates, g, z) < 0.0)) {
            if (locked && locked[g] && value > -(LOCKED_TOL / REL_TOL) * tolerance) continue;
            r->md->gstate[g] = !r->md->gstate[g];
            return 1;
        }
    }
    return 0;
}

static int settle(Run *r, const int8_t *locked) {
    int rc;
    for (int i = 0; i < 4 * r->ng + 8; i++) {
        if ((rc = evaluate(r))) return rc;
        if (!r->ng || !decide(r, locked)) return 0;
    }
    r->res->fail_t = r->t;
    return SF_CHATTER;
}

/* --- Average ------------------------------------------------------------------------------
 * SIMBA's Average, as documented in blocks.py (class Average): the running integral I of
 * the input is a state; D(t) = I(t - T) comes from the history of I, kept as one piece per
 * integrated interval (its Taylor polynomial in tau, or, for a stiff interval, z0 and M), and
 * is fitted over windows of at most T/4 by a degree-8 polynomial carried by a chain of states.
 * dpar = [T, Initial, FIT_TOL, KINK_TOL, MAX_HALVINGS, DEGREE, nodes (9), check nodes (8),
 *         Vandermonde of the nodes (81), factorials (9)]. */
#define FIT_N 9

struct Average {
    double *starts, *scales, *pool; /* pieces: coefficients (highest first), or a stiff piece's samples */
    int64_t *offset;
    Eval **evals; /* a stiff piece's evaluation (its propagators), NULL when volatile: M follows the samples */
    int32_t *length; /* coefficients, or -1 for a stiff piece */
    int64_t n, cap, pool_n, pool_cap, first_piece;
    double *stops;
    int64_t nstops, capstops, first_stop;
    double left[3];
    int has_left, left_structural;
    int32_t *left_key;
    int started;
    double window_end;
    int grid_only;
};

static void average_free(struct Average *a) {
    free(a->starts); free(a->scales); free(a->pool); free(a->offset); free(a->length); free(a->stops);
    free(a->evals);
    free(a->left_key);
    memset(a, 0, sizeof *a);
}

static int grow(void **p, int64_t *cap, int64_t need, size_t size) {
    if (need <= *cap) return 0;
    int64_t c = *cap ? *cap : 64;
    while (c < need) c += c / 2 + 1;
    void *q = realloc(*p, size * c);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

/* I at increasing history times s[0..n) into values. */
static int average_history(Run *r, int b, const double *s, int n, double *values) {
    struct Average *a = &r->averages[b];
    const double *p = DP(r, b);
    int nz = r->nz, s0 = r->md->state0[b];
    for (int i = 0; i < n; i++) {
        int64_t j = -1;
        if (s[i] >= 0.0 && a->n) {
            /* bisect_right(starts, s, lo=first_piece) - 1, at least first_piece */
            int64_t lo = a->first_piece, hi = a->n;
            while (lo < hi) {
                int64_t mid = (lo + hi) / 2;
                if (s[i] < a->starts[mid]) hi = mid; else lo = mid + 1;
            }
            j = lo - 1 > a->first_piece ? lo - 1 : a->first_piece;
        }
        if (j < 0) { values[i] = p[1] * s[i]; continue; }
        double tau = (s[i] - a->starts[j]) / a->scales[j];
        const double *c = a->pool + a->offset[j];
        if (a->length[j] >= 0) {
            double y = 0.0;
            for (int k = 0; k < a->length[j]; k++) y = y * tau + c[k];
            values[i] = y;
        } else {
            /* stiff piece: from the nearest sample before tau, as the interval itself evaluated it */
            int js = (int)(tau * NS);
            if (js > NS) js = NS;
            const double *sample = c + (int64_t)js * nz;
            double duration = (tau - TAUS[js]) * a->scales[j];
            double *zt = malloc(sizeof(double) * nz * (nz + 1));
            if (!zt) return SF_MEMORY;
            int rc;
            if (a->evals[j]) {
                rc = walk_with(r, a->evals[j], a->scales[j], sample, duration, zt);
            } else {
                double *e = zt + nz;
                rc = PY_CALL(r->md->expm_matrix(c + (int64_t)NT * nz, duration, e)) ? SF_PYTHON : 0;
                if (!rc) matvec(e, sample, zt, nz);
            }
            values[i] = zt[s0];
            free(zt);
            if (rc) return rc;
        }
    }
    return 0;
}

/* Solve V a = y (9 x 9) by Gaussian elimination with partial pivoting. */
static void solve9(const double *v, const double *y, double *out) {
    double m[FIT_N][FIT_N + 1];
    for (int i = 0; i < FIT_N; i++) {
        for (int j = 0; j < FIT_N; j++) m[i][j] = v[i * FIT_N + j];
        m[i][FIT_N] = y[i];
    }
    for (int c = 0; c < FIT_N; c++) {
        int pivot = c;
        for (int i = c + 1; i < FIT_N; i++)
            if (fabs(m[i][c]) > fabs(m[pivot][c])) pivot = i;
        if (pivot != c)
            for (int j = 0; j <= FIT_N; j++) { double t = m[c][j]; m[c][j] = m[pivot][j]; m[pivot][j] = t; }
        for (int i = c + 1; i < FIT_N; i++) {
            double f = m[i][c] / m[c][c];
            for (int j = c; j <= FIT_N; j++) m[i][j] -= f * m[c][j];
        }
    }
    for (int i = FIT_N - 1; i >= 0; i--) {
        double acc = m[i][FIT_N];
        for (int j = i + 1; j < FIT_N; j++) acc -= m[i][j] * out[j];
        out[i] = acc / m[i][i];
    }
}

static int average_refit(Run *r, int b) {
    struct Average *a = &r->averages[b];
    const double *p = DP(r, b);
    double period = p[0], fit_tol = p[2];
    int max_halvings = (int)p[4];
    const double *nodes = p + 6, *check = nodes + FIT_N, *vander = check + FIT_N - 1, *fact = vander + FIT_N * FIT_N;
    double t = r->t, s0 = t - period;
    double tolerance = 1e-12 * (period > fabs(t) ? period : fabs(t));
    int rc;
    if (!a->started) { /* first call of the run: history empty, one stop at 0 (end of Initial) */
        a->started = 1;
        if (grow((void **)&a->stops, &a->capstops, 1, sizeof(double))) return SF_MEMORY;
        a->stops[0] = 0.0;
        a->nstops = 1;
    }
    while (a->first_piece + 1 < a->n && a->starts[a->first_piece + 1] <= s0) a->first_piece++;
    if (a->first_piece > 1024) {
        int64_t k = a->first_piece, base = a->offset[k];
        memmove(a->starts, a->starts + k, sizeof(double) * (a->n - k));
        memmove(a->scales, a->scales + k, sizeof(double) * (a->n - k));
        memmove(a->length, a->length + k, sizeof(int32_t) * (a->n - k));
        memmove(a->offset, a->offset + k, sizeof(int64_t) * (a->n - k));
        memmove(a->evals, a->evals + k, sizeof(Eval *) * (a->n - k));
        a->n -= k;
        for (int64_t i = 0; i < a->n; i++) a->offset[i] -= base;
        memmove(a->pool, a->pool + base, sizeof(double) * (a->pool_n - base));
        a->pool_n -= base;
        a->first_piece = 0;
    }
    while (a->first_stop < a->nstops && a->stops[a->first_stop] <= s0 + tolerance) a->first_stop++;
    if (a->first_stop > 1024) {
        int64_t k = a->first_stop - 1; /* keep the last one: a new kink must come after it */
        memmove(a->stops, a->stops + k, sizeof(double) * (a->nstops - k));
        a->nstops -= k;
        a->first_stop = 1;
    }
    double next_stop = a->first_stop < a->nstops ? a->stops[a->first_stop] : INFINITY;
    double width = pymin(period / 4.0, next_stop - s0);
    a->grid_only = width < next_stop - s0;
    double s[FIT_N], values[FIT_N], checks[FIT_N - 1], coef[FIT_N], base = 0.0;
    for (int halvings = 0; halvings <= max_halvings; halvings++) {
        for (int i = 0; i < FIT_N; i++) s[i] = s0 + width * nodes[i];
        if ((rc = average_history(r, b, s, FIT_N, values))) return rc;
        base = values[0];
        double rhs[FIT_N], variation = 0.0, miss = 0.0;
        for (int i = 0; i < FIT_N; i++) {
            rhs[i] = values[i] - base;
            if (fabs(rhs[i]) > variation) variation = fabs(rhs[i]);
        }
        solve9(vander, rhs, coef);
        for (int i = 0; i < FIT_N - 1; i++) s[i] = s0 + width * check[i];
        if ((rc = average_history(r, b, s, FIT_N - 1, checks))) return rc;
        for (int i = 0; i < FIT_N - 1; i++) {
            double y = coef[FIT_N - 1];
            for (int k = FIT_N - 2; k >= 0; k--) y = coef[k] + y * check[i];
            double d = fabs(y - (checks[i] - base));
            if (d > miss) miss = d;
        }
        /* The second term is the round-off of I itself (large after a long run). */
        if (miss <= fit_tol * variation + 1e-15 * fabs(base) || halvings == max_halvings) break;
        width /= 2.0;
        a->grid_only = 1;
    }
    double *z = r->md->z;
    int s0i = r->md->state0[b];
    for (int j = 0; j < FIT_N; j++) z[s0i + 1 + j] = fact[j] * coef[j] / pow(width, j);
    z[s0i + 1] += base;
    a->window_end = t + width;
    return 0;
}

/* After each interval (from r->t, h = r->h, under ev), before the instant at its end. */
static int average_integrated(Run *r, int b, Eval *ev, double tau_end, int structural) {
    struct Average *a = &r->averages[b];
    const Model *md = r->md;
    const double *p = DP(r, b);
    int nz = r->nz, s0 = md->state0[b], nkey = r->nkey;
    int row0 = 0;
    for (int k = 0; k < b; k++) row0 += 3 * (md->kind[k] == K_AVERAGE);
    double right[3], t0 = r->t;
    for (int i = 0; i < 3; i++) right[i] = csr_dot(&ev->extra, row0 + i, r->z0);
    int changed = a->left_structural || !a->left_key || memcmp(a->left_key, ev->key, sizeof(int32_t) * nkey) != 0;
    if (a->has_left && changed && t0 > a->stops[a->nstops - 1]) {
        double scale = 0.0, jump = 0.0;
        for (int i = 0; i < 3; i++) {
            if (fabs(a->left[i]) > scale) scale = fabs(a->left[i]);
            if (fabs(right[i]) > scale) scale = fabs(right[i]);
            if (fabs(right[i] - a->left[i]) > jump) jump = fabs(right[i] - a->left[i]);
        }
        if (jump > p[3] * scale) {
            if (grow((void **)&a->stops, &a->capstops, a->nstops + 1, sizeof(double))) return SF_MEMORY;
            a->stops[a->nstops++] = t0;
        }
    }
    if (tau_end * r->h > 0.0) {
        int64_t k = a->n;
        int64_t cap = a->cap;
        if (grow((void **)&a->starts, &cap, k + 1, sizeof(double))) return SF_MEMORY;
        cap = a->cap;
        if (grow((void **)&a->scales, &cap, k + 1, sizeof(double))) return SF_MEMORY;
        cap = a->cap;
        if (grow((void **)&a->offset, &cap, k + 1, sizeof(int64_t))) return SF_MEMORY;
        cap = a->cap;
        if (grow((void **)&a->length, &cap, k + 1, sizeof(int32_t))) return SF_MEMORY;
        cap = a->cap;
        if (grow((void **)&a->evals, &cap, k + 1, sizeof(Eval *))) return SF_MEMORY;
        a->cap = cap;
        int volatile_eval = !ev->cacheable;
        int64_t need = r->stiff ? (int64_t)NT * nz + (volatile_eval ? (int64_t)nz * nz : 0) : r->n_terms + 1;
        if (grow((void **)&a->pool, &a->pool_cap, a->pool_n + need, sizeof(double))) return SF_MEMORY;
        a->starts[k] = t0;
        a->scales[k] = r->h;
        a->offset[k] = a->pool_n;
        double *c = a->pool + a->pool_n;
        a->evals[k] = NULL;
        if (!r->stiff) {
            a->length[k] = r->n_terms + 1;
            for (int j = 0; j <= r->n_terms; j++) c[j] = r->terms[(int64_t)(r->n_terms - j) * nz + s0];
        } else {
            /* Integrated with exact propagators: keep its samples and its evaluation (or, when that
             * is volatile, M), which evaluate the piece exactly. */
            a->length[k] = -1;
            memcpy(c, r->samples, sizeof(double) * NT * nz);
            if (volatile_eval) memcpy(c + (int64_t)NT * nz, ev->mdense, sizeof(double) * nz * nz);
            else a->evals[k] = ev;
        }
        a->pool_n += need;
        a->n = k + 1;
    }
    for (int i = 0; i < 3; i++) a->left[i] = csr_dot(&ev->extra, row0 + i, r->znew);
    a->has_left = 1;
    a->left_structural = structural;
    if (!a->left_key) {
        a->left_key = malloc(sizeof(int32_t) * (nkey ? nkey : 1));
        if (!a->left_key) return SF_MEMORY;
    }
    memcpy(a->left_key, ev->key, sizeof(int32_t) * nkey);
    return 0;
}

/* --- blocks at instants ---------------------------------------------------------------------- */
static void block_snap(Run *r, int b) {
    const double *p = DP(r, b);
    double *z = r->md->z;
    int s0 = r->md->state0[b];
    if (r->md->kind[b] == K_SLOPED) {
        double n, rr;
        int k;
        periodic_find(p, r->t, &n, &k, &rr);
        int ne = (int)p[2];
        const double *edges = p + 3, *start = edges + ne, *slope = start + (ne - 1);
        z[s0] = start[k] + slope[k] * (rr - edges[k]) / p[0];
    } else if (r->md->kind[b] == K_PWL) {
        int n = (int)p[0];
        const double *times = p + 1, *values = times + n, *slopes = values + n;
        int k = pwl_segment(p, r->t);
        if (k == 0 || k >= n)
            z[s0] = k == 0 ? values[0] : values[n - 1];
        else
            z[s0] = values[k - 1] + slopes[k] * (r->t - times[k - 1]);
    }
}

static double sampled_next(double t, double ts) { return nearbyint(t / ts + 1.0) * ts; }

/* Sampled blocks and C Code: 1 when a held output changed. */
static int block_sample(Run *r, int b) {
    const Model *md = r->md;
    const double *p = DP(r, b);
    double *rt = RT(r, b), *z = md->z;
    int s0 = md->state0[b], in0 = md->in0[b], kind = md->kind[b];
    const Csr *in = &r->now->inputs;
    if (kind == K_CCODE) {
        double ts = p[0];
        int nin = md->n_in[b], nout = md->n_out[b];
        double *last_in = rt + 3, *held = last_in + nin, *inbuf = held + nout, *outbuf = inbuf + (nin ? nin : 1);
        if (ts > 0) {
            if (r->t < rt[0] && !same_instant(r->t, rt[0])) return 0;
            rt[0] = sampled_next(r->t, ts);
        }
        for (int k = 0; k < nin; k++) inbuf[k] = csr_dot(in, in0 + k, z);
        if (!(ts > 0) && rt[2] != 0.0 && rt[1] == r->t) {
            int same = 1;
            for (int k = 0; k < nin; k++) same &= inbuf[k] == last_in[k];
            if (same) return 0;
        }
        double step = rt[2] != 0.0 ? r->t - rt[1] : 0.0;
        rt[1] = r->t; rt[2] = 1.0;
        for (int k = 0; k < nin; k++) last_in[k] = inbuf[k];
        r->res->fail_block = b;
        ((calc_fn)md->cc_calc[b])(outbuf, inbuf, r->t, step);
        r->res->fail_block = -1;
        int changed = 0;
        for (int k = 0; k < nout; k++) {
            changed |= outbuf[k] != held[k];
            held[k] = outbuf[k];
            z[s0 + k] = held[k];
        }
        return changed;
    }
    /* ZOH, DTF, DPID: rt = [next_sample, held, ...]; dpar[0] = ts. */
    double ts = p[0];
    if (r->t < rt[0] && !same_instant(r->t, rt[0])) return 0;
    rt[0] = sampled_next(r->t, ts);
    double u = csr_dot(in, in0, z), y;
    if (kind == K_ZOH) {
        y = u;
    } else if (kind == K_DTF) {
        int nm = (int)p[1];
        const double *num = p + 2, *den = num + nm + 1;
        double *memory = rt + 2;
        y = num[0] * u + (nm ? memory[0] : 0.0);
        for (int k = 0; k < nm; k++) {
            double nxt = k + 1 < nm ? memory[k + 1] : 0.0;
            memory[k] = nxt + num[k + 1] * u - den[k + 1] * y;
        }
    } else { /* K_DPID: p = [ts, kp, ki, kd, kb, umin, umax, antiwindup]; rt = [next, held, integral, previous, has_previous] */
        double kp = p[1], ki = p[2], kd = p[3], kb = p[4], umin = p[5], umax = p[6];
        int antiwindup = (int)p[7];
        double e = u;
        double previous = rt[4] != 0.0 ? rt[3] : e;
        double candidate = rt[2] + ki * ts * e;
        double unsat = kp * e + candidate + kd * (e - previous) / ts;
        double sat = umin > unsat ? umin : unsat;
        sat = umax < sat ? umax : sat;
        if (antiwindup == 1 && sat != unsat && (unsat - sat) * e > 0)
            candidate = rt[2];
        else if (antiwindup == 2)
            candidate -= kb * ts * (unsat - sat);
        rt[2] = candidate;
        rt[3] = e; rt[4] = 1.0;
        y = sat;
    }
    int changed = y != rt[1];
    rt[1] = y;
    z[s0] = y;
    return changed;
}

static double block_breakpoint(Run *r, int b, int *grid_only) {
    const Model *md = r->md;
    const double *p = DP(r, b);
    double *rt = RT(r, b), t = r->t;
    *grid_only = 0;
    switch (md->kind[b]) {
    case K_STEP: return t < p[0] ? p[0] : INFINITY;
    case K_SQUARE:
    case K_SLOPED: {
        double n, rr; int k;
        periodic_find(p, t, &n, &k, &rr);
        return (n + p[3 + k + 1] - p[1]) / p[0];
    }
    case K_PWL: {
        int n = (int)p[0], k = pwl_segment(p, t);
        return k < n ? p[1 + k] : INFINITY;
    }
    case K_ZOH: case K_DTF: case K_DPID: return rt[0] > t ? rt[0] : INFINITY;
    case K_CCODE: {
        double ts = p[0], best = INFINITY;
        int any = 0;
        if (ts > 0 && rt[0] > t) { best = rt[0]; any = 1; }
        if (md->cc_next[b]) {
            r->res->fail_block = b;
            double announced = ((next_fn)md->cc_next[b])(t, ts > 0 ? ts : 0.0);
            r->res->fail_block = -1;
            if (announced > t) { best = any ? pymin(best, announced) : announced; any = 1; }
        }
        return best;
    }
    case K_AVERAGE: {
        const struct Average *a = &r->averages[b];
        *grid_only = a->grid_only;
        return a->window_end > t ? a->window_end : INFINITY;
    }
    default: return INFINITY;
    }
}

static int instant(Run *r, const int8_t *locked) {
    const Model *md = r->md;
    int rc;
    for (int b = 0; b < md->nblocks; b++) {
        int kind = md->kind[b];
        if (kind == K_SLOPED || kind == K_PWL) block_snap(r, b);
        else if (kind == K_AVERAGE) {
            struct Average *a = &r->averages[b];
            const double *p = DP(r, b);
            double m = p[0] > fabs(r->t) ? p[0] : fabs(r->t);
            /* The chain carries D exactly until the window ends; refit only there. */
            if (r->t >= a->window_end - 1e-12 * m && (rc = average_refit(r, b))) return rc;
        }
    }
    if ((rc = settle(r, locked))) return rc;
    int pulses = 0;
    for (int b = 0; b < md->nblocks; b++) {
        if (md->kind[b] != K_ZCD) continue;
        double *rt = RT(r, b);
        int state = md->gstate[md->ipar[md->ipar_off[b]]];
        if (rt[2] != 0.0 && state != (int)rt[1]) { rt[0] = state ? 1.0 : -1.0; pulses = 1; }
    }
    if (pulses && (rc = evaluate(r))) return rc;
    int changed = 0, again = 0;
    for (int b = 0; b < md->nblocks; b++) {
        int kind = md->kind[b];
        if (kind != K_ZOH && kind != K_DTF && kind != K_DPID && kind != K_CCODE) continue;
        if (changed && (rc = evaluate(r))) return rc;
        changed = block_sample(r, b);
        again = again || changed;
    }
    if (pulses) {
        for (int b = 0; b < md->nblocks; b++)
            if (md->kind[b] == K_ZCD) RT(r, b)[0] = 0.0;
        if ((rc = evaluate(r))) return rc;
        for (int b = 0; b < md->nblocks; b++)
            if (md->kind[b] == K_CCODE && !(DP(r, b)[0] > 0)) again = block_sample(r, b) || again;
    }
    if ((again || pulses) && (rc = settle(r, NULL))) return rc;
    for (int b = 0; b < md->nblocks; b++) {
        if (md->kind[b] != K_ZCD) continue;
        double *rt = RT(r, b);
        rt[1] = md->gstate[md->ipar[md->ipar_off[b]]];
        rt[2] = 1.0;
    }
    return 0;
}

/* --- recording ---------------------------------------------------------------------------- */
static int record_row(Run *r, double t, const double *values) {
    Result *res = r->res;
    int nr = r->md->nr;
    int64_t k = res->n / CHUNK_ROWS;
    if (k == res->nchunks) {
        double **chunks = realloc(res->chunks, sizeof(double *) * (k + 1));
        if (!chunks) return SF_MEMORY;
        res->chunks = chunks;
        res->chunks[k] = malloc(sizeof(double) * CHUNK_ROWS * (1 + nr));
        if (!res->chunks[k]) return SF_MEMORY;
        res->nchunks = k + 1;
    }
    double *row = res->chunks[k] + (res->n % CHUNK_ROWS) * (1 + nr);
    row[0] = t;
    memcpy(row + 1, values, sizeof(double) * nr);
    res->n++;
    return 0;
}

static void record_values(Run *r, const double *z, double *out) {
    for (int i = 0; i < r->md->nr; i++) out[i] = csr_dot(&r->now->record, i, z);
}

/* --- the run ------------------------------------------------------------------------------ */
static int loop(Run *r) {
    const Model *md = r->md;
    Result *res = r->res;
    int nz = r->nz, ng = r->ng, nr = md->nr, rc;
    double end = md->end_time, step_out = md->output_step;
    int grid = step_out > 0;
    double *z = md->z;
    double *rowbuf = malloc(sizeof(double) * (nr ? nr : 1));
    if (!rowbuf) return SF_MEMORY;
    struct timespec last_poll, now_ts;
    clock_gettime(CLOCK_MONOTONIC, &last_poll);

    r->t = 0.0;
    for (int b = 0; b < md->nblocks; b++)
        if (md->kind[b] == K_AVERAGE && (rc = average_refit(r, b))) goto done;
    if ((rc = instant(r, NULL))) goto done;
    record_values(r, z, rowbuf);
    if ((rc = record_row(r, 0.0, rowbuf))) goto done;
    double grid_next = grid ? step_out : 0.0;
    double same_time = 1e-12 * end;
    int same_count = 0;
    while (r->t < end) {
        if ((res->events & 1023) == 0) {
            clock_gettime(CLOCK_MONOTONIC, &now_ts);
            if ((now_ts.tv_sec - last_poll.tv_sec) + 1e-9 * (now_ts.tv_nsec - last_poll.tv_nsec) > 0.05) {
                last_poll = now_ts;
                if (PY_CALL(md->poll())) { rc = SF_PYTHON; goto done; }
            }
        }
        /* next breakpoint */
        double t_end = pymin(end, r->t + md->max_step), structural = INFINITY;
        for (int b = 0; b < md->nblocks; b++) {
            int kind = md->kind[b], grid_only;
            if (kind == K_NONE || kind == K_ZCD) continue;
            double tb = block_breakpoint(r, b, &grid_only);
            t_end = pymin(t_end, tb);
            if (!grid_only) structural = pymin(structural, tb);
        }
        r->h = t_end - r->t;
        if (r->h <= 0.0) { res->fail_t = r->t; rc = SF_STUCK; goto done; }
        memcpy(r->z0, z, sizeof(double) * nz);
        Eval *ev = r->now;
        if ((rc = interval_begin(r)) || (rc = interval_many(r))) goto done;
        /* guards at the sample points */
        int hit = -1;
        memset(r->locked, 0, ng);
        double tau, t_new;
        if (ng) {
            for (int g = 0; g < ng; g++) {
                double scale = 0.0;
                for (int j = 0; j < NT; j++) {
                    double s = csr_absdot(&ev->guards, g, r->samples + (int64_t)j * nz);
                    if (s > scale) scale = s;
                }
                r->tol[g] = REL_TOL * scale;
            }
            for (int j = 1; j < NT && hit < 0; j++)
                for (int g = 0; g < ng; g++)
                    if (csr_dot(&ev->guards, g, r->samples + (int64_t)j * nz) < -r->tol[g]) { hit = j; break; }
        }
        if (hit >= 0) {
            double best = INFINITY;
            for (int g = 0; g < ng; g++) {
                r->values[g] = NAN;
                if (csr_dot(&ev->guards, g, r->samples + (int64_t)hit * nz) < -r->tol[g]) {
                    double root;
                    if ((rc = guard_root(r, g, TAUS[hit - 1], TAUS[hit], &root))) goto done;
                    r->values[g] = root;
                    if (root < best) best = root;
                }
            }
            tau = best;
            for (int g = 0; g < ng; g++) r->locked[g] = !isnan(r->values[g]) && r->values[g] <= tau + 1e-12;
            t_new = tau < 1.0 ? r->t + tau * r->h : t_end;
            if ((rc = interval_at(r, tau, r->znew))) goto done;
            res->guard_events++;
        } else {
            tau = 1.0;
            t_new = t_end;
            memcpy(r->znew, r->samples + (int64_t)NS * nz, sizeof(double) * nz);
        }
        if (grid) {
            while (grid_next < t_new - same_time) {
                if ((rc = interval_at(r, (grid_next - r->t) / r->h, r->scratch))) goto done;
                record_values(r, r->scratch, rowbuf);
                if ((rc = record_row(r, grid_next, rowbuf))) goto done;
                grid_next = nearbyint(grid_next / step_out + 1) * step_out;
            }
        }
        same_count = t_new == r->t ? same_count + 1 : 0;
        if (same_count > MAX_EVENTS_PER_INSTANT) { res->fail_t = r->t; rc = SF_INSTANT; goto done; }
        if (md->n_extra) {
            int is_structural = hit >= 0 || same_instant(t_new, structural);
            for (int b = 0; b < md->nblocks; b++)
                if (md->kind[b] == K_AVERAGE && (rc = average_integrated(r, b, ev, tau, is_structural))) goto done;
        }
        memcpy(z, r->znew, sizeof(double) * nz);
        r->t = t_new;
        record_values(r, z, r->pre);
        for (int g = 0; g < ng; g++)
            if (r->locked[g]) md->gstate[g] = !md->gstate[g];
        if ((rc = instant(r, r->locked))) goto done;
        res->events++;
        if (!grid) {
            record_values(r, z, r->post);
            if ((rc = record_row(r, r->t, r->pre))) goto done;
            int differs = 0;
            for (int i = 0; i < nr; i++) differs |= fabs(r->pre[i] - r->post[i]) > 1e-12 * fabs(r->post[i]);
            if (differs && (rc = record_row(r, r->t, r->post))) goto done;
        } else if (fabs(grid_next - r->t) <= same_time && grid_next <= end + same_time) {
            record_values(r, z, rowbuf);
            if ((rc = record_row(r, grid_next, rowbuf))) goto done;
            grid_next = nearbyint(grid_next / step_out + 1) * step_out;
        }
    }
done:
    free(rowbuf);
    return rc;
}

int sf_run(const Model *md, Result *res) {
    Run run;
    memset(&run, 0, sizeof run);
    run.md = md;
    run.res = res;
    run.nz = md->nz;
    run.ng = md->ng;
    res->fail_block = -1;
    if (!tau_powers_ready) init_tau_powers();
    int nz = md->nz, nkey = md->ng;
    for (int b = 0; b < md->nblocks; b++) nkey += has_key(md->kind[b]);
    run.nkey = nkey;
    run.key = malloc(sizeof(int32_t) * (nkey + 1));
    run.locked = calloc(md->ng + 1, 1);
    run.values = malloc(sizeof(double) * (md->ng + 1));
    run.tol = malloc(sizeof(double) * (md->ng + 1));
    double *work = malloc(sizeof(double) * ((size_t)nz * (MAX_TERMS + 1 + NT + 6) + (size_t)nz * nz + 2 * (md->nr + 1)));
    run.tcap = 256;
    run.table = malloc(sizeof(int32_t) * run.tcap);
    run.averages = calloc(md->nblocks ? md->nblocks : 1, sizeof(struct Average));
    if (!run.key || !run.locked || !run.values || !run.tol || !work || !run.table || !run.averages) return SF_MEMORY;
    for (int i = 0; i < run.tcap; i++) run.table[i] = -1;
    run.terms = work;
    run.samples = run.terms + (size_t)nz * (MAX_TERMS + 1);
    run.z0 = run.samples + (size_t)nz * NT;
    run.znew = run.z0 + nz;
    run.scratch = run.znew + nz;
    run.scratch2 = run.scratch + nz;
    run.slopes = run.scratch2 + nz;
    run.post = run.slopes + nz; /* nz or nr long */
    run.step = run.post + (nz > md->nr ? nz : md->nr + 1);
    run.pre = run.step + (size_t)nz * nz;

    sigjmp_buf jump;
    sigjmp_buf *previous_jump = guard_jump;
    int rc;
    ensure_alternate_stack();
    guard_jump = &jump;
    guard_signal = 0;
    if (sigsetjmp(jump, 1) == 0) {
        guard_active = 1;
        rc = loop(&run);
        guard_active = 0;
    } else {
        rc = SF_SIGNAL;
        res->fail_signal = guard_signal;
        res->fail_t = run.t;
    }
    guard_jump = previous_jump;
    for (int s = 0; s < run.nslots; s++) { eval_free(run.slots[s]); free(run.slots[s]); }
    eval_free(&run.volatile_eval[0]);
    eval_free(&run.volatile_eval[1]);
    for (int b = 0; b < md->nblocks; b++) average_free(&run.averages[b]);
    free(run.averages);
    free(run.slots); free(run.table); free(run.key); free(run.locked); free(run.values); free(run.tol); free(work);
    return rc;
}

/* C Code initialize/terminate under the same guard. */
int sf_call_void(void *fn, Result *res) {
    sigjmp_buf jump;
    sigjmp_buf *previous_jump = guard_jump;
    int rc = 0;
    ensure_alternate_stack();
    guard_jump = &jump;
    if (sigsetjmp(jump, 1) == 0) {
        guard_active = 1;
        ((void_fn)fn)();
        guard_active = 0;
    } else {
        rc = SF_SIGNAL;
        res->fail_signal = guard_signal;
    }
    guard_jump = previous_jump;
    return rc;
}

/* Copy the record into times[n] and values[nr][n], freeing chunks as they are copied. */
void sf_take(Result *res, int32_t nr, double *times, double *values) {
    int64_t n = res->n;
    for (int64_t k = 0; k < res->nchunks; k++) {
        const double *chunk = res->chunks[k];
        int64_t first = k * CHUNK_ROWS, last = first + CHUNK_ROWS < n ? first + CHUNK_ROWS : n;
        for (int64_t i = first; i < last; i++) {
            const double *row = chunk + (i - first) * (1 + nr);
            times[i] = row[0];
            for (int s = 0; s < nr; s++) values[(int64_t)s * n + i] = row[1 + s];
        }
        free(res->chunks[k]);
        res->chunks[k] = NULL;
    }
}

void sf_free_result(Result *res) {
    for (int64_t k = 0; k < res->nchunks; k++) free(res->chunks[k]);
    free(res->chunks);
    res->chunks = NULL;
    res->n = res->nchunks = 0;
}
