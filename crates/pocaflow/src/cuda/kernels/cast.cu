// One conversion pair, compiled with -DSRC=<type> -DDST=<type>: dst[view 0] = cast(src[view 1]).
extern "C" __global__ void cast_copy(const SRC* src, DST* dst, i64 n, View<2> v) {
    FOR_EACH(i, n) {
        i64 o[2];
        offsets(v, i, o);
        dst[o[0]] = cast<SRC, DST>(src[o[1]]);
    }
}
