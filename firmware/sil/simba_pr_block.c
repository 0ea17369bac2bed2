/*
 * SIMBA "C Code" block running the firmware's PR (pr_controller).
 *
 * SIMBA compiles one translation unit per block: pr_controller.h, then
 * pr_controller.c, then this file, concatenated. Standalone builds add
 * firmware/lib/pr_controller to the include path and link pr_controller.c.
 *
 * Inputs:  [0] clock (the controller samples when it equals 1, and at
 *              time 0 so the first sample is not lost); it must tick every
 *              PR_BLOCK_TS_S, the period the coefficients are computed for
 *          [1] error e (V for the server's voltage loop, A for the client's
 *              current loop)
 *          [2] Kp, [3] Kr (Kr != 0)
 *          [4] w0, rad/s: the client receives the server's over the link
 *          [5] phi', rad
 *          [6] u_max: the output is bounded to -u_max..u_max (the bus
 *              voltage: u is the bridge's differential voltage)
 * Outputs: [0] u(k), held between clock ticks.
 *
 * Gains, w0 and bounds arrive as signals so a sweep can change them without
 * recompiling; the board gets them from ac_gains.h. They are read at every
 * tick and applied without resetting the state, as the client's firmware
 * retunes w0 from each frame.
 */
#include "simba_library.h"
#include <stdlib.h>

#ifndef PR_CONTROLLER_H
#include "pr_controller.h"
#endif

/* The study's 100 us control task. */
#define PR_BLOCK_TS_S 100e-6f
/* SIMBA's first call comes at time 0 exactly; allow for solver rounding. */
#define START_TIME_S 1e-10

/* All block state is this one struct (the controller's output is what the
 * block holds between ticks), so a snapshot is a plain copy. */
typedef struct {
    pr_controller_t controller;
    int kr_invalid; /* Kr was 0 at the last tick: nothing valid ran, the output is 0 */
} block_state_t;

static block_state_t block;

void initialize(void)
{
    /* Placeholder gains until the first tick brings the real ones. */
    const pr_controller_params_t params = {0.0f, 1.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    pr_controller_init(&block.controller, &params);
    block.kr_invalid = 0;
}

void calculate_outputs(double *outputs, double *inputs, double time, double time_step)
{
    (void)time_step;
    if (inputs[0] == 1.0 || time < START_TIME_S) {
        const float u_max = (float)inputs[6];
        block.kr_invalid = pr_controller_set_gains(&block.controller, (float)inputs[2], (float)inputs[3]) != 0;
        pr_controller_set_w0(&block.controller, PR_BLOCK_TS_S, (float)inputs[4], (float)inputs[5]);
        pr_controller_set_bounds(&block.controller, -u_max, u_max);
        if (!block.kr_invalid) {
            pr_controller_calculate(&block.controller, (float)inputs[1]);
        }
    }
    outputs[0] = block.kr_invalid ? 0.0 : (double)block.controller.output;
}

void terminate(void)
{
}

/* SIMBA saves and restores state through this; SNAPSHOT_CREATE allocates
 * because SIMBA's interface asks for a pointer it later hands back to
 * SNAPSHOT_DELETE. The control law itself never allocates. */
void *snapshot(snapshot_mode mode, void *snapshot_ptr)
{
    block_state_t *state = (block_state_t *)snapshot_ptr;
    switch (mode) {
    case SNAPSHOT_CREATE:
        state = (block_state_t *)malloc(sizeof(block_state_t));
        if (state == NULL) {
            return NULL;
        }
        *state = block;
        return state;
    case SNAPSHOT_UPDATE:
        *state = block;
        return state;
    case SNAPSHOT_LOAD:
        block = *state;
        return state;
    case SNAPSHOT_DELETE:
        free(state);
        return NULL;
    }
    return NULL;
}
