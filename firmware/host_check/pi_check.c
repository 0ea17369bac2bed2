/*
 * Drives pi_controller with the promoted gains, for `simbaflow firmware-check`.
 *
 * Built for the host as a shared library (Python feeds it error sequences
 * through ctypes and compares with simbaflow.promote.pi_model) and for the
 * Cortex-M4F (to check the header and control path compile to single
 * precision). The parameters come only from controller_gains.h, so a wrong
 * literal in the generated header shows up as a mismatch. Per-sample output
 * bounds are set before each sample, as the board's control task does with
 * the measured Vs/E.
 */
#include <stddef.h>
#include <stdint.h>

#include "controller_gains.h"
#include "pi_controller.h"

void pi_check_float(const float *errors, const float *out_min, const float *out_max,
                    float *outputs, size_t n);
void pi_check_fixed(const int32_t *errors, const int32_t *out_min, const int32_t *out_max,
                    int32_t *outputs, size_t n);

void pi_check_float(const float *errors, const float *out_min, const float *out_max,
                    float *outputs, size_t n)
{
    const pi_controller_params_t params = {
        CONTROLLER_GAINS_A0, CONTROLLER_GAINS_A1,
        CONTROLLER_GAINS_OUT_MIN, CONTROLLER_GAINS_OUT_MAX,
    };
    pi_controller_t pi;
    pi_controller_init(&pi, &params);
    for (size_t k = 0; k < n; k++) {
        pi_controller_set_bounds(&pi, out_min[k], out_max[k]);
        outputs[k] = pi_controller_calculate(&pi, errors[k]);
    }
}

void pi_check_fixed(const int32_t *errors, const int32_t *out_min, const int32_t *out_max,
                    int32_t *outputs, size_t n)
{
    const pi_controller_fixed_params_t params = {
        CONTROLLER_GAINS_A0_Q, CONTROLLER_GAINS_A1_Q,
        CONTROLLER_GAINS_OUT_MIN_Q, CONTROLLER_GAINS_OUT_MAX_Q,
        CONTROLLER_GAINS_FRAC_BITS,
    };
    pi_controller_fixed_t pi;
    pi_controller_fixed_init(&pi, &params);
    for (size_t k = 0; k < n; k++) {
        pi_controller_fixed_set_bounds(&pi, out_min[k], out_max[k]);
        outputs[k] = pi_controller_fixed_calculate(&pi, errors[k]);
    }
}
