// Package render turns plain float32 maps into pictures: colormaps, colourised maps,
// heat-map overlays, tiled grids with captions, colour bars, PNG encoding and
// self-contained HTML fragments for GoNB cells and the CLI report.
//
// The package is pure Go and knows nothing about GoMLX: a 2-D map is a [Map]
// (H rows of W float32 values, row-major) and pictures are [image.Image] /
// *[image.RGBA] values.
//
// Conventions, chosen to match the Python tools people compare against:
//
//   - Colormaps are 256-entry tables generated from matplotlib 3.6.3 (viridis,
//     magma, inferno, plasma, gray, RdBu_r) and OpenCV 4.6.0 (COLORMAP_JET) by
//     scripts/gen_colormaps.py.
//   - [Colormap.At] indexes like matplotlib (floor(256·t), t=1 → 255);
//     [QuantizeCV] + [Colormap.Index] quantise like numpy/OpenCV (uint8(255·t)),
//     which is what pytorch-grad-cam's show_cam_on_image does.
//   - [Overlay] reproduces show_cam_on_image(img, mask, use_rgb=True,
//     colormap=cv2.COLORMAP_JET, image_weight=1-alpha) bit for bit.
//   - [Resize] with [Bilinear] matches torch.nn.functional.interpolate(mode="bilinear")
//     for both align_corners settings (align_corners=False equals cv2.resize
//     INTER_LINEAR); [Nearest] matches mode="nearest" and cv2 INTER_NEAREST.
//
// Bad input (wrong lengths, non-positive sizes, nil images, non-finite ranges)
// returns an error; non-finite map values never produce NaN pixels: they are drawn
// in the colormap's Bad colour and counted in the result.
package render
