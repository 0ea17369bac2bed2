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

/* All block state is this one struct (its alpha_prev is the output held
 * between clock ticks), so a snapshot is a plain copy. */
static pi_controller_t controller;

void initialize(void)
{
    const pi_controller_params_t params = {0.0f, 0.0f, ALPHA_MIN, ALPHA_MAX};
    pi_controller_init(&controller, &params);
}

void calculate_outputs(double *outputs, double *inputs, double time, double time_step)
{
    (void)time_step;
    if (inputs[0] == 1.0 || time < START_TIME_S) {
        /* Coefficients arrive as signals so a sweep can change them without
         * recompiling; the board gets them from controller_gains.h. */
        pi_controller_set_coefficients(&controller, (float)inputs[2], (float)inputs[3]);
        pi_controller_calculate(&controller, (float)inputs[1]);
    }
    outputs[0] = (double)controller.alpha_prev;
}

void terminate(void)
{
}

/* SIMBA saves and restores state through this; SNAPSHOT_CREATE allocates
 * because SIMBA's interface asks for a pointer it later hands back to
 * SNAPSHOT_DELETE. The control law itself never allocates. */
void *snapshot(snapshot_mode mode, void *snapshot_ptr)
{
    pi_controller_t *state = (pi_controller_t *)snapshot_ptr;
    switch (mode) {
    case SNAPSHOT_CREATE:
        state = (pi_controller_t *)malloc(sizeof(pi_controller_t));
        if (state == NULL) {
            return NULL;
        }
        *state = controller;
        return state;
    case SNAPSHOT_UPDATE:
        *state = controller;
        return state;
    case SNAPSHOT_LOAD:
        controller = *state;
        return state;
    case SNAPSHOT_DELETE:
        free(state);
        return NULL;
    }
    return NULL;
}
