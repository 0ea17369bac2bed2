/* rs485_frame: see rs485_frame.h for the layout. */
#ifndef RS485_FRAME_H
#include "rs485_frame.h"
#endif

#include <string.h>

/* memcpy between float and uint32_t is the portable bit cast; the shifts
 * fix the byte order whatever the host's. */
static void put_float(uint8_t *out, float value)
{
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    for (unsigned k = 0; k < 4u; k++) {
        out[k] = (uint8_t)(bits >> (8u * k));
    }
}

static float get_float(const uint8_t *in)
{
    uint32_t bits = 0;
    float value;
    for (unsigned k = 0; k < 4u; k++) {
        bits |= (uint32_t)in[k] << (8u * k);
    }
    memcpy(&value, &bits, sizeof value);
    return value;
}

/* Not NaN or infinity: the exponent field is not all ones. */
static int is_finite(const uint8_t *in)
{
    return ((in[3] & 0x7Fu) != 0x7Fu) || ((in[2] & 0x80u) == 0u);
}

uint8_t rs485_frame_id_status(uint8_t id, uint8_t status)
{
    return (uint8_t)(((id & 3u) << 6) | (status & 3u));
}

uint8_t rs485_frame_id(const rs485_frame_t *frame)
{
    return (uint8_t)(frame->id_status >> 6);
}

uint8_t rs485_frame_status(const rs485_frame_t *frame)
{
    return (uint8_t)(frame->id_status & 3u);
}

void rs485_frame_pack(const rs485_frame_t *frame, uint8_t *out)
{
    put_float(out, frame->v_ref_v);
    put_float(out + 4, frame->i_ref_a);
    put_float(out + 8, frame->w0_rad_s);
    out[12] = frame->id_status;
}

int rs485_frame_unpack(const uint8_t *in, rs485_frame_t *frame)
{
    const uint8_t id_status = in[12];
    if ((id_status >> 6) != RS485_FRAME_ID_SERVER || (id_status & 3u) > RS485_FRAME_STATUS_START
        || (id_status & 0x3Cu) != 0u) {
        return -1;
    }
    if (!is_finite(in) || !is_finite(in + 4) || !is_finite(in + 8)) {
        return -1;
    }
    frame->v_ref_v = get_float(in);
    frame->i_ref_a = get_float(in + 4);
    frame->w0_rad_s = get_float(in + 8);
    frame->id_status = id_status;
    return 0;
}
