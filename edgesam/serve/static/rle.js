// COCO run-length encodings in the browser: decode the compressed counts string and paint masks.
"use strict";
const rle = (() => {
  function decodeCounts(text) {
    const counts = [];
    let pos = 0;
    while (pos < text.length) {
      let x = 0, k = 0, more = true;
      while (more) {
        const c = text.charCodeAt(pos) - 48;
        x |= (c & 0x1f) << (5 * k);
        more = (c & 0x20) !== 0;
        pos += 1; k += 1;
        if (!more && (c & 0x10)) x |= -1 << (5 * k);
      }
      if (counts.length > 2) x += counts[counts.length - 2];
      counts.push(x);
    }
    return counts;
  }
  // {size: [H, W], counts: str} -> Uint8Array [H * W] (row-major, 1 inside)
  function toMask(r) {
    const [h, w] = r.size;
    const counts = typeof r.counts === "string" ? decodeCounts(r.counts) : r.counts;
    const mask = new Uint8Array(h * w);
    let index = 0;
    for (let i = 0; i < counts.length; i++) {
      const end = index + counts[i];
      if (i % 2 === 1) {
        for (let j = index; j < end; j++) {
          const x = (j / h) | 0;
          mask[(j - x * h) * w + x] = 1;
        }
      }
      index = end;
    }
    return mask;
  }
  // Paint masks (largest first) into an ImageData with their colours.
  function paint(imageData, masks, colors, alpha) {
    const data = imageData.data;
    masks.forEach((m, i) => {
      const [r, g, b] = colors[i % colors.length];
      for (let p = 0; p < m.length; p++) {
        if (m[p]) { const q = 4 * p; data[q] = r; data[q + 1] = g; data[q + 2] = b; data[q + 3] = alpha; }
      }
    });
    return imageData;
  }
  function bbox(mask, h, w) {
    let x0 = w, y0 = h, x1 = -1, y1 = -1, area = 0;
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if (mask[y * w + x]) {
      area++; if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y;
    }
    return area ? { area, bbox: [x0, y0, x1 - x0 + 1, y1 - y0 + 1] } : { area: 0, bbox: [0, 0, 0, 0] };
  }
  return { decodeCounts, toMask, paint, bbox };
})();
