/* pr_controller: see pr_controller.h for the law and its conventions. */
#ifndef PR_CONTROLLER_H
#include "pr_controller.h"
#endif

#include <math.h>

void pr_controller_coefficients(float ts_s, float w0_rad_s, float phi_prime_rad,
                                float *b0, float *b1, float *a1)
{
    const float w0_ts = w0_rad_s * ts_s;
    *b0 = ts_s * cosf(phi_prime_rad);
    *b1 = -ts_s * cosf(phi_prime_rad - w0_ts);
    *a1 = -2.0f * cosf(w0_ts);
}

void pr_controller_reset(pr_controller_t *pr)
{
    pr->error_prev = 0.0f;
    pr->resonant_1 = 0.0f;
    pr->resonant_2 = 0.0f;
    pr->output = 0.0f;
}

int pr_controller_init(pr_controller_t *pr, const pr_controller_params_t *params)
{
    if (params->kr == 0.0f || params->out_min > params->out_max) {
        return -1;
    }
    pr->params = *params;
    pr->inverse_kr = 1.0f / params->kr;
    pr_controller_reset(pr);
    return 0;
}

int pr_controller_set_gains(pr_controller_t *pr, float kp, float kr)
{
    if (kr == 0.0f) {
        return -1;
    }
    pr->params.kp = kp;
    pr->params.kr = kr;
    pr->inverse_kr = 1.0f / kr;
    return 0;
}

void pr_controller_set_bounds(pr_controller_t *pr, float out_min, float out_max)
{
    pr->params.out_min = out_min;
    pr->params.out_max = out_max;
}

void pr_controller_set_w0(pr_controller_t *pr, float ts_s, float w0_rad_s, float phi_prime_rad)
{
    pr_controller_coefficients(ts_s, w0_rad_s, phi_prime_rad,
                               &pr->params.b0, &pr->params.b1, &pr->params.a1);
}

float pr_controller_calculate(pr_controller_t *pr, float error)
{
    const pr_controller_params_t *p = &pr->params;
    /* Same grouping as Pr: numerator sum minus denominator sum (a2 = 1). */
    const float feed = p->b0 * error + p->b1 * pr->error_prev;
    const float back = p->a1 * pr->resonant_1 + pr->resonant_2;
    float resonant = feed - back;
    const float unclamped = p->kp * error + p->kr * resonant;
    float output = unclamped;
    if (output < p->out_min) {
        output = p->out_min;
    } else if (output > p->out_max) {
        output = p->out_max;
    }
    if (output != unclamped) {
        resonant = pr->inverse_kr * (output - p->kp * error);
    }
    pr->resonant_2 = pr->resonant_1;
    pr->resonant_1 = resonant;
    pr->error_prev = error;
    pr->output = output;
    return output;
}
