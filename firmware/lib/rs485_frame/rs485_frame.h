/*
 * rs485_frame: the frame the AC SERVER sends its CLIENT every control period
 * over RS485 (seeds 000/001): voltage reference, current reference, w0 and
 * an id/status byte.
 *
 * Packed explicitly, 13 bytes, floats as IEEE-754 binary32 little-endian:
 *
 *     offset 0  v_ref_v     float   server's voltage reference, V
 *     offset 4  i_ref_a     float   client's current reference, A (k_gain i_server)
 *     offset 8  w0_rad_s    float   fundamental, rad/s
 *     offset 12 id_status   uint8   bits 7..6 sender id, bits 1..0 status
 *
 * unlike the public example, which sends its C struct as raw bytes, so its
 * padding and byte order depend on the compiler. No heap, no HAL.
 */
#ifndef RS485_FRAME_H
#define RS485_FRAME_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RS485_FRAME_SIZE 13u

/* Sender id in bits 7..6: only the server sends frames. */
#define RS485_FRAME_ID_SERVER 1u
/* Status in bits 1..0. */
#define RS485_FRAME_STATUS_IDLE 0u  /* server idle: the client stops */
#define RS485_FRAME_STATUS_POWER 1u /* server in power mode */
#define RS485_FRAME_STATUS_START 2u /* first power frame: the client restarts its recording */

typedef struct {
    float v_ref_v;
    float i_ref_a;
    float w0_rad_s;
    uint8_t id_status;
} rs485_frame_t;

/* The id/status byte for a sender id (0..3) and a status (0..3). */
uint8_t rs485_frame_id_status(uint8_t id, uint8_t status);

/* Bits 7..6 and 1..0 of a frame's id/status byte. */
uint8_t rs485_frame_id(const rs485_frame_t *frame);
uint8_t rs485_frame_status(const rs485_frame_t *frame);

/* Write the RS485_FRAME_SIZE bytes of `frame` to `out`. */
void rs485_frame_pack(const rs485_frame_t *frame, uint8_t *out);

/* Read a frame from RS485_FRAME_SIZE bytes. Returns 0, or -1 (frame left
 * unchanged) when the sender is not the server, the status is not one of
 * the three above, or a float is not finite: a garbled frame must not
 * become a reference. */
int rs485_frame_unpack(const uint8_t *in, rs485_frame_t *frame);

#ifdef __cplusplus
}
#endif

#endif /* RS485_FRAME_H */
