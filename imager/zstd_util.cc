#include "imager/zstd_util.h"

#include <fmt/format.h>
#include <zstd.h>

#include "imager/stored_frame.h"

namespace kiln::imager {

Compressor::Compressor(int level) : cctx_(ZSTD_createCCtx()), level_(level) {
  auto* c = static_cast<ZSTD_CCtx*>(cctx_);
  ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level_);
  ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 1);
  // The object's SHA-256 already guards its bytes end to end.
  ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 0);
}

Compressor::~Compressor() {
  ZSTD_freeCCtx(static_cast<ZSTD_CCtx*>(cctx_));
}

void Compressor::Compress(std::string_view data, std::string* out) {
  if (LooksIncompressible(data)) {  // zstd would store it raw, after trying
    out->clear();
    AppendStoredFrame(data, out);
    ++stored_frames_;
    return;
  }
  out->resize(ZSTD_compressBound(data.size()));
  size_t n = ZSTD_compress2(static_cast<ZSTD_CCtx*>(cctx_), out->data(), out->size(), data.data(),
                            data.size());
  // compressBound guarantees room; an error here is a bug in zstd's contract.
  if (ZSTD_isError(n)) n = 0;
  out->resize(n);
}

Decompressor::Decompressor() : dctx_(ZSTD_createDCtx()) {}
Decompressor::~Decompressor() {
  ZSTD_freeDCtx(static_cast<ZSTD_DCtx*>(dctx_));
}

Status Decompressor::Decompress(std::string_view frame, uint64_t max_size, std::string* out,
                                std::string_view what) {
  unsigned long long size = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (size == ZSTD_CONTENTSIZE_ERROR) return Corruption(fmt::format("{}: not a zstd frame", what));
  if (size == ZSTD_CONTENTSIZE_UNKNOWN)
    return Corruption(fmt::format("{}: zstd frame does not state its size", what));
  if (size > max_size)
    return Corruption(fmt::format("{}: zstd frame claims {} bytes, more than the {} allowed", what,
                                  size, max_size));
  size_t frame_len = ZSTD_findFrameCompressedSize(frame.data(), frame.size());
  if (ZSTD_isError(frame_len))
    return Corruption(fmt::format("{}: truncated or damaged zstd frame", what));
  if (frame_len != frame.size())
    return Corruption(
        fmt::format("{}: {} bytes after the zstd frame", what, frame.size() - frame_len));
  out->resize(size);
  size_t n = ZSTD_decompressDCtx(static_cast<ZSTD_DCtx*>(dctx_), out->data(), out->size(),
                                 frame.data(), frame.size());
  if (ZSTD_isError(n)) return Corruption(fmt::format("{}: zstd: {}", what, ZSTD_getErrorName(n)));
  if (n != size) return Corruption(fmt::format("{}: zstd frame shorter than it claims", what));
  return Status::Ok();
}

}  // namespace kiln::imager
