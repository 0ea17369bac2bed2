/*
 * Drives pr_controller for the AC study's checks.
 *
 * Built for the host as a shared library (tests feed error sequences through
 * ctypes and compare with simbaflow.promote.pr_model bit for bit) and for the
 * Cortex-M4F (to check the control path compiles to single precision). The
 * role functions take every parameter from ac_gains.h, so a wrong literal in
 * the generated header shows up as a mismatch.
 */
#include <stddef.h>

#include "ac_gains.h"
#include "pr_controller.h"

int pr_check_run(const float *params, const float *errors, float *outputs, size_t n);
void pr_check_coefficients(float ts_s, float w0_rad_s, float phi_prime_rad, float *coefficients);
int pr_check_role(int client, const float *errors, float *outputs, size_t n);

static int run(const pr_controller_params_t *params, const float *errors, float *outputs, size_t n)
{
    pr_controller_t pr;
    if (pr_controller_init(&pr, params) != 0) {
        return -1;
    }
    for (size_t k = 0; k < n; k++) {
        outputs[k] = pr_controller_calculate(&pr, errors[k]);
    }
    return 0;
}

/* params: kp, kr, b0, b1, a1, out_min, out_max (pr_controller_params_t's order). */
int pr_check_run(const float *params, const float *errors, float *outputs, size_t n)
{
    const pr_controller_params_t p = {
        params[0], params[1], params[2], params[3], params[4], params[5], params[6],
    };
    return run(&p, errors, outputs, n);
}

void pr_check_coefficients(float ts_s, float w0_rad_s, float phi_prime_rad, float *coefficients)
{
    pr_controller_coefficients(ts_s, w0_rad_s, phi_prime_rad,
                               &coefficients[0], &coefficients[1], &coefficients[2]);
}

/* The server's (client == 0) or the client's PR exactly as ac_gains.h gives it. */
int pr_check_role(int client, const float *errors, float *outputs, size_t n)
{
    const pr_controller_params_t server = {
        AC_GAINS_SERVER_KP, AC_GAINS_SERVER_KR, AC_GAINS_SERVER_B0, AC_GAINS_SERVER_B1,
        AC_GAINS_SERVER_A1, -AC_GAINS_V_BUS_V, AC_GAINS_V_BUS_V,
    };
    const pr_controller_params_t client_params = {
        AC_GAINS_CLIENT_KP, AC_GAINS_CLIENT_KR, AC_GAINS_CLIENT_B0, AC_GAINS_CLIENT_B1,
        AC_GAINS_CLIENT_A1, -AC_GAINS_V_BUS_V, AC_GAINS_V_BUS_V,
    };
    return run(client ? &client_params : &server, errors, outputs, n);
}
