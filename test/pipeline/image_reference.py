# Reference for src/pipeline/image.ts: the same steps with Pillow and NumPy (Debian's python3-pil, python3-numpy).
# Reads a JSON list of {"image": path, "steps": {...}, "out": path} on stdin; writes each tensor as raw float32 to "out".
import json
import sys

import numpy as np
from PIL import Image, ImageOps

FILTERS = {"nearest": Image.NEAREST, "linear": Image.BILINEAR, "cubic": Image.BICUBIC, "lanczos3": Image.LANCZOS}


def run(path, steps):
    image = Image.open(path)
    if steps.get("orient", True):
        image = ImageOps.exif_transpose(image)
    image = image.convert("RGB")
    resize = steps.get("resize")
    if resize:
        kernel = FILTERS[resize.get("filter", "linear")]
        if "shorter" in resize:
            w, h = image.size
            s = resize["shorter"]
            size = (s, round(h * s / w)) if w <= h else (round(w * s / h), s)
            image = image.resize(size, kernel)
        else:
            image = image.resize((resize["width"], resize["height"]), kernel)
    crop = steps.get("crop")
    if crop:
        w, h = image.size
        left, top = round((w - crop["width"]) / 2), round((h - crop["height"]) / 2)
        image = image.crop((left, top, left + crop["width"], top + crop["height"]))
    color = steps.get("color", "rgb")
    if color == "grey":
        array = np.asarray(image.convert("L"), dtype=np.float64)[:, :, None]
    else:
        array = np.asarray(image, dtype=np.float64)
        if color == "bgr":
            array = array[:, :, ::-1]
    array = array * steps.get("scale", 1)
    norm = steps.get("normalize")
    if norm:
        array = (array - np.array(norm["mean"])) / np.array(norm["std"])
    if steps.get("layout", "chw") == "chw":
        array = array.transpose(2, 0, 1)
    return np.ascontiguousarray(array, dtype=np.float32)


if __name__ == "__main__":
    for job in json.load(sys.stdin):
        tensor = run(job["image"], job["steps"])
        tensor.tofile(job["out"])
        print(json.dumps(list(tensor.shape)))
