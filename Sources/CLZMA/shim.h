#include <lzma.h>

// One xz stream (CRC64 check) of `in`, LZMA2 at preset 9 (9e when `extreme`) with the given
// literal context bits and position bits, into `out`; the bytes written, or 0 with `*error` set to liblzma's lzma_ret.
// In C because LZMA_PRESET_EXTREME and the filter ids are macros Swift does not import.
static inline size_t btfgen_xz_encode(
    const uint8_t *in, size_t in_size, uint8_t *out, size_t out_size, int extreme, uint32_t lc, uint32_t pb,
    int *error)
{
    lzma_options_lzma options;
    if (lzma_lzma_preset(&options, extreme ? 9 | LZMA_PRESET_EXTREME : 9)) {
        *error = LZMA_OPTIONS_ERROR;
        return 0;
    }
    options.lc = lc;
    options.lp = 0;
    options.pb = pb;
    lzma_filter filters[] = {{.id = LZMA_FILTER_LZMA2, .options = &options}, {.id = LZMA_VLI_UNKNOWN, .options = NULL}};
    size_t written = 0;
    lzma_ret ret = lzma_stream_buffer_encode(filters, LZMA_CHECK_CRC64, NULL, in, in_size, out, &written, out_size);
    if (ret != LZMA_OK) {
        *error = (int)ret;
        return 0;
    }
    return written;
}

// The most bytes btfgen_xz_encode writes for `in_size` bytes.
static inline size_t btfgen_xz_bound(size_t in_size) { return lzma_stream_buffer_bound(in_size); }
