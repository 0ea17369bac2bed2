/*
 * SIMBA "C Code" block running the firmware's float PI (pi_controller).
 *
 * SIMBA compiles one translation unit per block: pi_controller.h, then
 * pi_controller.c, then this file, concatenated. Standalone builds add
 * firmware/lib/pi_controller to the include path and link pi_controller.c.
 *
 * Inputs:  [0] clock (the controller samples when it equals 1, and at
 *              time 0 so the first sample is not lost, as SIMBA's own
 *              discrete-controller example does)
 *          [1] current error e = i_ref - i_L (A)
 *          [2] a0, [3] a1 (recurrence coefficients)
 *          [4] computation delay in samples: 0 applies alpha(k) at tick k;
 *              1 applies alpha(k-1), as on the board, where the duty the
 *              control task computes takes effect one PWM period later.
 *              The value is rounded to 0 or 1 (< 0.5, and NaN, give 0;
 *              anything >= 0.5 gives 1): the block models one sample at
 *              most, so a study sweeping more must keep those candidates
 *              off these designs (simulate.designs.<name>.where).
 * Outputs: [0] alpha, the controller's duty contribution, clamped to -1..1.
 *
 * The design adds the compensation Vs/E and limits the sum to the duty range
 * 0..1 (duty_cycle block). alpha itself must be allowed below 0: it is the
 * only way the loop can bring the current down (alpha = 0 holds it). Any
 * |alpha| > 1 saturates the duty whatever Vs/E is, so -1..1 bounds the state
 * (anti-windup) without cutting into the usable range. The board does better
 * with the measured Vs/E: see firmware/src/main.cpp.
 */
#include "simba_library.h"
#include <stdlib.h>

#ifndef PI_CONTROLLER_H
#include "pi_controller.h"
#endif

#define ALPHA_MIN (-1.0f)
#define ALPHA_MAX 1.0f
/* SIMBA's first call comes at time 0 exactly; allow for solver rounding. */
#define START_TIME_S 1e-10

/* All block state is this one struct, so a snapshot is a plain copy. */
typedef struct {
    pi_controller_t controller;
    float alpha_computed; /* alpha of the last tick: the delay register */
    float alpha_applied;  /* the output, held between clock ticks */
} simba_pi_block_state_t;

static simba_pi_block_state_t state;

void initialize(void)
{
    const pi_controller_params_t params = {0.0f, 0.0f, ALPHA_MIN, ALPHA_MAX};
    pi_controller_init(&state.controller, &params);
    /* Before the first tick the board applies the initial alpha (0). */
    state.alpha_computed = state.controller.alpha_prev;
    state.alpha_applied = state.controller.alpha_prev;
}

void calculate_outputs(double *outputs, double *inputs, double time, double time_step)
{
    (void)time_step;
    if (inputs[0] == 1.0 || time < START_TIME_S) {
        const int delayed = inputs[4] >= 0.5;
        /* Coefficients arrive as signals so a sweep can change them without
         * recompiling; the board gets them from controller_gains.h. */
        pi_controller_set_coefficients(&state.controller, (float)inputs[2], (float)inputs[3]);
        const float alpha = pi_controller_calculate(&state.controller, (float)inputs[1]);
        state.alpha_applied = delayed ? state.alpha_computed : alpha;
        state.alpha_computed = alpha;
    }
    outputs[0] = (double)state.alpha_applied;
}

void terminate(void)
{
}

/* SIMBA saves and restores state through this; SNAPSHOT_CREATE allocates
 * because SIMBA's interface asks for a pointer it later hands back to
 * SNAPSHOT_DELETE. The control law itself never allocates. */
void *snapshot(snapshot_mode mode, void *snapshot_ptr)
{
    simba_pi_block_state_t *saved = (simba_pi_block_state_t *)snapshot_ptr;
    switch (mode) {
    case SNAPSHOT_CREATE:
        saved = (simba_pi_block_state_t *)malloc(sizeof(simba_pi_block_state_t));
        if (saved == NULL) {
            return NULL;
        }
        *saved = state;
        return saved;
    case SNAPSHOT_UPDATE:
        *saved = state;
        return saved;
    case SNAPSHOT_LOAD:
        state = *saved;
        return saved;
    case SNAPSHOT_DELETE:
        free(saved);
        return NULL;
    }
    return NULL;
}
