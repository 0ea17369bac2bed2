/*
 * One role of the AC client/server application, reduced to its portable
 * control path, for simbaflow's firmware check.
 *
 * Built once with -DROLE_SERVER and once with -DROLE_CLIENT, like
 * apps/client_server/src/main.cpp (whose OwnTech Core HAL calls cannot build
 * here), and repeating its per-period arithmetic:
 *
 *   server: u = PR_v(v_ref - v_out), duty = 0.5 + u / (2 V_bus), and the
 *           RS485 frame (v_ref, i_ref, w0, status) packed for the client;
 *   client: the frame unpacked, u = PR_i(i_ref - i1),
 *           duty = 0.5 + (v_ref + u) / (2 V_bus).
 *
 * Every gain and coefficient comes from the generated ac_gains.h. The host
 * build is driven through ctypes and compared bit for bit with
 * simbaflow.promote.pr_model; the Cortex-M4F objects are checked for
 * double-precision helpers.
 */
#include <stddef.h>
#include <stdint.h>

#include "ac_gains.h"
#include "pr_controller.h"
#include "rs485_frame.h"

#if defined(ROLE_SERVER) && !defined(ROLE_CLIENT)
#define AC_ROLE_IS_SERVER 1
#elif defined(ROLE_CLIENT) && !defined(ROLE_SERVER)
#define AC_ROLE_IS_SERVER 0
#else
#error "define exactly one of ROLE_SERVER, ROLE_CLIENT"
#endif

#ifdef __cplusplus
extern "C" {
#endif
int ac_role_is_server(void);
int ac_role_run(const float *v_ref, const float *i_ref, const float *measured, float *u, float *duty, size_t n);
#ifdef __cplusplus
}
#endif

int ac_role_is_server(void)
{
    return AC_ROLE_IS_SERVER;
}

/*
 * n control periods from a cleared controller. v_ref and i_ref are what the
 * server sends (the client receives them through the packed frame);
 * measured is the role's feedback (server: v_out, client: i1). Returns 0,
 * -1 if the PR refuses the header's parameters, -2 if the client rejects a
 * frame.
 */
int ac_role_run(const float *v_ref, const float *i_ref, const float *measured, float *u, float *duty, size_t n)
{
    const pr_controller_params_t server = {
        AC_GAINS_SERVER_KP, AC_GAINS_SERVER_KR, AC_GAINS_SERVER_B0, AC_GAINS_SERVER_B1,
        AC_GAINS_SERVER_A1, -AC_GAINS_V_BUS_V, AC_GAINS_V_BUS_V,
    };
    const pr_controller_params_t client = {
        AC_GAINS_CLIENT_KP, AC_GAINS_CLIENT_KR, AC_GAINS_CLIENT_B0, AC_GAINS_CLIENT_B1,
        AC_GAINS_CLIENT_A1, -AC_GAINS_V_BUS_V, AC_GAINS_V_BUS_V,
    };
    pr_controller_t pr;
    uint8_t wire[RS485_FRAME_SIZE];
    if (pr_controller_init(&pr, AC_ROLE_IS_SERVER ? &server : &client) != 0) {
        return -1;
    }
    for (size_t k = 0; k < n; k++) {
        const rs485_frame_t sent = {v_ref[k], i_ref[k], AC_GAINS_W0_RAD_S,
                                    rs485_frame_id_status(RS485_FRAME_ID_SERVER, RS485_FRAME_STATUS_POWER)};
        rs485_frame_pack(&sent, wire);
        if (AC_ROLE_IS_SERVER) {
            u[k] = pr_controller_calculate(&pr, v_ref[k] - measured[k]);
            duty[k] = 0.5F + u[k] / (2.0F * AC_GAINS_V_BUS_V);
        } else {
            rs485_frame_t received;
            if (rs485_frame_unpack(wire, &received) != 0) {
                return -2;
            }
            u[k] = pr_controller_calculate(&pr, received.i_ref_a - measured[k]);
            duty[k] = 0.5F + (received.v_ref_v + u[k]) / (2.0F * AC_GAINS_V_BUS_V);
        }
    }
    return 0;
}
