// Shared by every pocaflow kernel module: integer types, strided views and the grid-stride loop.
typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef signed char i8;
typedef short i16;
typedef int i32;
typedef long long i64;

// Most dimensions of a view (after merging), and most index arrays of a gather or scatter.
#define MAXD 16
#define MAXK 8

// N views of one shape: element strides per view, dimensions outermost first. Offsets are
// applied to the pointers on the host.
template <int N> struct View {
    i64 shape[MAXD];
    i64 strides[N][MAXD];
    int nd;
};

// The storage offsets, in each of the N views, of the element with C-order index i. The loop
// over dimensions runs to the constant MAXD (guarded by nd), so every access to the view is at
// a constant position: indexing a kernel parameter with a run-time index would make each thread
// copy the whole view into local memory.
template <int N>
__device__ __forceinline__ void offsets(const View<N>& v, i64 i, i64 (&o)[N]) {
    // Views that merged into one dimension (every dense or evenly strided operand): no loop.
    if (v.nd == 1) {
        #pragma unroll
        for (int n = 0; n < N; ++n) o[n] = i * v.strides[n][0];
        return;
    }
    #pragma unroll
    for (int n = 0; n < N; ++n) o[n] = 0;
    #pragma unroll
    for (int d = MAXD - 1; d >= 0; --d) {
        if (d < v.nd) {
            const i64 c = d > 0 ? i % v.shape[d] : i;
            if (d > 0) i /= v.shape[d];
            #pragma unroll
            for (int n = 0; n < N; ++n) o[n] += c * v.strides[n][d];
        }
    }
}

#define FOR_EACH(i, n) \
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64)gridDim.x * blockDim.x)
