# Reference for image outputs (src/pipeline/image-output.ts) with Pillow and NumPy (Debian's python3-pil, python3-numpy):
# the input's tensor by image_reference.py's steps, the fixture model (1 - x, then each pixel a 2x2 block) in NumPy, its
# output back to pixels by the output's steps undone, against the PNG mlops answered, decoded by Pillow.
# Reads {"image", "steps", "output", "png"} on stdin; prints {"size", "mode", "max_diff", "differing"}.
import json
import os
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
from image_reference import run  # noqa: E402

job = json.load(sys.stdin)
tensor = run(job["image"], job["steps"]).astype(np.float64)
out = job["output"]
hwc = out.get("layout", "chw") == "hwc"
if not hwc:
    tensor = tensor.transpose(1, 2, 0)
model = np.repeat(np.repeat(1 - tensor, 2, axis=0), 2, axis=1)
norm = out.get("normalize")
if norm:
    model = model * np.array(norm["std"]) + np.array(norm["mean"])
pixels = np.clip(np.round(model / out.get("scale", 1)), 0, 255).astype(np.uint8)
if out.get("color") == "bgr":
    pixels = pixels[:, :, ::-1]
ours = Image.open(job["png"])
array = np.asarray(ours, dtype=np.int16)
if array.ndim == 2:
    array = array[:, :, None]
diff = np.abs(array - pixels.astype(np.int16))
print(json.dumps({"size": list(ours.size), "mode": ours.mode, "max_diff": int(diff.max()), "differing": int((diff > 0).sum())}))
