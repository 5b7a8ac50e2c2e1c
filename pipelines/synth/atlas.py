"""The canonical hip anatomy: keyframes of every structure of the phantom's left side, in mm.

Frame (pipelines.synth.shapes): x from the midline to the subject's left (the right side is its
mirror image), y from anterior (-) to posterior (+), z from the acetabular roof (0) caudally to
the proximal femoral shaft (120). Keyframes are (z, cx, cy, a, b, angle in degrees); `a` lies
along the angle, measured from +x towards +y. The placement and proportions follow axial hip
CT/MR of an adult at these levels (docs/synthesis.md: the anatomy atlases and the published axial
images it cites); a subject is this atlas scaled, posed and perturbed (pipelines.synth.anatomy).
"""

from __future__ import annotations

from pipelines.synth.shapes import Keyframe

# The deep fascia (the outline of everything under the subcutaneous fat): a super-ellipse
# centred on the midline.
DEEP_OUTLINE: list[Keyframe] = [
    (-20.0, 0.0, 8.0, 146.0, 110.0, 0.0),
    (0.0, 0.0, 8.0, 150.0, 110.0, 0.0),
    (40.0, 0.0, 6.0, 168.0, 108.0, 0.0),
    (80.0, 0.0, 4.0, 164.0, 104.0, 0.0),
    (140.0, 0.0, 2.0, 152.0, 98.0, 0.0),
]
DEEP_POWER = 2.5

# Muscle compartments, painted in this order (later ones win where they overlap; GMIN, deep to
# GMED, after it). The four labelled muscles of the paper come last.
MUSCLES: dict[str, list[Keyframe]] = {
    "vasti": [
        (62.0, 128.0, 2.0, 14.0, 12.0, 0.0),
        (90.0, 126.0, 0.0, 40.0, 34.0, 0.0),
        (140.0, 121.0, -2.0, 47.0, 42.0, 0.0),
    ],
    "adductors": [
        (48.0, 38.0, -52.0, 10.0, 7.0, 30.0),
        (75.0, 50.0, -36.0, 28.0, 18.0, 40.0),
        (100.0, 58.0, -26.0, 38.0, 26.0, 45.0),
        (140.0, 63.0, -20.0, 44.0, 31.0, 45.0),
    ],
    "obturator internus": [
        (5.0, 50.0, 14.0, 18.0, 6.0, 82.0),
        (15.0, 50.0, 14.0, 28.0, 8.0, 82.0),
        (45.0, 49.0, 20.0, 28.0, 9.0, 80.0),
        (65.0, 47.0, 34.0, 17.0, 8.0, 70.0),
        (75.0, 47.0, 40.0, 6.0, 4.0, 70.0),
    ],
    "obturator externus": [
        (48.0, 60.0, -16.0, 10.0, 5.0, 35.0),
        (60.0, 64.0, -12.0, 19.0, 7.0, 30.0),
        (78.0, 72.0, -4.0, 18.0, 7.0, 20.0),
        (85.0, 76.0, 0.0, 6.0, 4.0, 20.0),
    ],
    "quadratus femoris": [
        (60.0, 88.0, 46.0, 8.0, 4.0, -15.0),
        (68.0, 90.0, 45.0, 22.0, 8.0, -15.0),
        (90.0, 92.0, 40.0, 22.0, 8.0, -15.0),
        (97.0, 93.0, 38.0, 8.0, 4.0, -15.0),
    ],
    "gemelli and piriformis": [
        (-20.0, 62.0, 66.0, 26.0, 9.0, -30.0),
        (10.0, 75.0, 56.0, 26.0, 8.0, -20.0),
        (35.0, 92.0, 44.0, 24.0, 6.0, -10.0),
        (45.0, 98.0, 42.0, 8.0, 4.0, -10.0),
    ],
    "iliopsoas": [
        (-20.0, 64.0, -46.0, 25.0, 19.0, 35.0),
        (0.0, 68.0, -46.0, 24.0, 18.0, 30.0),
        (25.0, 78.0, -41.0, 21.0, 14.0, 20.0),
        (50.0, 90.0, -32.0, 18.0, 13.0, 20.0),
        (70.0, 100.0, -13.0, 12.0, 10.0, 40.0),
        (80.0, 104.0, 4.0, 6.0, 5.0, 60.0),
    ],
    "rectus femoris": [
        (5.0, 108.0, -56.0, 6.0, 5.0, 20.0),
        (40.0, 110.0, -62.0, 12.0, 9.0, 20.0),
        (80.0, 112.0, -62.0, 18.0, 12.0, 10.0),
        (140.0, 112.0, -54.0, 25.0, 14.0, 0.0),
    ],
    "sartorius": [
        (-20.0, 118.0, -66.0, 11.0, 6.0, 25.0),
        (0.0, 113.0, -73.0, 12.0, 6.0, 20.0),
        (60.0, 95.0, -86.0, 14.0, 7.0, 10.0),
        (140.0, 70.0, -82.0, 16.0, 9.0, 0.0),
    ],
    "levator ani": [
        (50.0, 0.0, 45.0, 30.0, 22.0, 0.0),
        (70.0, 0.0, 40.0, 38.0, 28.0, 0.0),
        (92.0, 0.0, 36.0, 30.0, 24.0, 0.0),
    ],
    "GMED": [
        (-20.0, 116.0, 34.0, 42.0, 20.0, 75.0),
        (0.0, 122.0, 28.0, 40.0, 19.0, 75.0),
        (20.0, 138.0, 22.0, 32.0, 15.0, 78.0),
        (40.0, 158.0, 12.0, 22.0, 8.0, 82.0),
        (58.0, 160.0, 8.0, 11.0, 5.0, 85.0),
        (62.0, 160.0, 8.0, 5.0, 3.0, 85.0),
    ],
    "GMIN": [
        (-20.0, 101.0, 16.0, 30.0, 12.0, 72.0),
        (0.0, 106.0, 10.0, 28.0, 11.0, 70.0),
        (18.0, 116.0, -5.0, 22.0, 10.0, 55.0),
        (35.0, 127.0, -14.0, 14.0, 7.0, 40.0),
        (48.0, 132.0, -15.0, 7.0, 4.0, 40.0),
    ],
    "TFL": [
        (-20.0, 122.0, -50.0, 12.0, 7.0, 55.0),
        (0.0, 130.0, -49.0, 14.0, 8.0, 60.0),
        (40.0, 147.0, -42.0, 17.0, 9.0, 70.0),
        (80.0, 153.0, -32.0, 13.0, 7.0, 80.0),
        (110.0, 157.0, -24.0, 7.0, 4.0, 85.0),
        (125.0, 158.0, -20.0, 4.0, 2.5, 85.0),
    ],
    "GMAX": [
        (-20.0, 48.0, 100.0, 44.0, 17.0, -12.0),
        (0.0, 55.0, 98.0, 48.0, 18.0, -15.0),
        (30.0, 84.0, 90.0, 54.0, 21.0, -30.0),
        (60.0, 104.0, 80.0, 54.0, 22.0, -42.0),
        (90.0, 120.0, 64.0, 42.0, 18.0, -55.0),
        (120.0, 131.0, 48.0, 28.0, 12.0, -65.0),
        (140.0, 135.0, 42.0, 15.0, 7.0, -70.0),
    ],
}

# Pelvic bone of one side (cortical shell over cancellous bone); the acetabulum is a spherical
# shell around the femoral head (pipelines.synth.anatomy).
PELVIS: dict[str, list[Keyframe]] = {
    "ilium": [
        (-20.0, 74.0, 24.0, 44.0, 13.0, 62.0),
        (0.0, 78.0, 18.0, 38.0, 14.0, 60.0),
        (10.0, 80.0, 15.0, 32.0, 15.0, 55.0),
        (20.0, 85.0, 10.0, 18.0, 11.0, 50.0),
    ],
    "quadrilateral plate": [
        (12.0, 63.0, 8.0, 26.0, 5.0, 85.0),
        (40.0, 62.0, 10.0, 30.0, 5.0, 85.0),
        (50.0, 62.0, 14.0, 20.0, 4.0, 85.0),
    ],
    "ischium": [
        (10.0, 72.0, 38.0, 15.0, 10.0, 70.0),
        (30.0, 70.0, 42.0, 16.0, 11.0, 70.0),
        (60.0, 61.0, 54.0, 18.0, 13.0, 60.0),
        (90.0, 55.0, 58.0, 16.0, 12.0, 60.0),
        (98.0, 54.0, 58.0, 7.0, 5.0, 60.0),
    ],
    "superior pubic ramus": [
        (28.0, 52.0, -46.0, 25.0, 6.0, 36.0),
        (40.0, 47.0, -51.0, 36.0, 8.0, 36.0),
        (52.0, 40.0, -56.0, 28.0, 7.0, 36.0),
    ],
    "pubic body": [
        (42.0, 14.0, -72.0, 8.0, 7.0, 15.0),
        (55.0, 14.0, -71.0, 12.0, 10.0, 15.0),
        (70.0, 15.0, -68.0, 10.0, 8.0, 30.0),
    ],
    "inferior pubic ramus": [
        (65.0, 24.0, -60.0, 9.0, 6.0, 60.0),
        (78.0, 30.0, -46.0, 12.0, 6.0, 62.0),
        (92.0, 40.0, -26.0, 10.0, 5.0, 65.0),
    ],
}

# Midline organs (the first keyframe's cx is 0): bladder, rectum, prostate/uterus.
BLADDER: list[Keyframe] = [
    (-20.0, 0.0, -36.0, 38.0, 30.0, 0.0),
    (20.0, 0.0, -36.0, 38.0, 30.0, 0.0),
    (45.0, 0.0, -40.0, 24.0, 18.0, 0.0),
    (56.0, 0.0, -44.0, 8.0, 6.0, 0.0),
]
RECTUM: list[Keyframe] = [
    (-20.0, 0.0, 72.0, 16.0, 14.0, 0.0),
    (50.0, 0.0, 62.0, 14.0, 12.0, 0.0),
    (85.0, 0.0, 50.0, 10.0, 9.0, 0.0),
    (92.0, 0.0, 48.0, 5.0, 5.0, 0.0),
]
PROSTATE: list[Keyframe] = [
    (48.0, 0.0, 18.0, 8.0, 6.0, 0.0),
    (60.0, 0.0, 20.0, 18.0, 14.0, 0.0),
    (85.0, 0.0, 24.0, 12.0, 10.0, 0.0),
]
COCCYX: list[Keyframe] = [
    (-20.0, 0.0, 102.0, 13.0, 9.0, 0.0),
    (15.0, 0.0, 100.0, 9.0, 6.0, 0.0),
    (25.0, 0.0, 99.0, 4.0, 3.0, 0.0),
]

# Femoral vessels of one side: (z, cx, cy, radius) of the artery; the vein runs 13 mm medial.
FEMORAL_ARTERY: list[tuple[float, float, float, float]] = [
    (-20.0, 60.0, -60.0, 4.5),
    (60.0, 70.0, -72.0, 4.5),
    (140.0, 80.0, -64.0, 4.0),
]
VEIN_OFFSET_MM = 13.0
VEIN_RADIUS_MM = 6.0

# Femur of the left side (x, y, z in mm): head centre and radius, the neck base, the greater
# and lesser trochanters and the shaft axis.
HEAD_CENTRE = (92.0, -5.0, 28.0)
HEAD_RADIUS = 23.0
NECK_DIRECTION = (0.70, 0.18, 0.69)  # head -> neck base: neck-shaft angle ~130 deg, anteverted
NECK_LENGTH = 45.0
GREATER_TROCHANTER = ((139.0, 10.0, 45.0), (16.0, 22.0, 24.0))  # centre, radii
LESSER_TROCHANTER = ((109.0, 15.0, 75.0), (9.0, 9.0, 11.0))
SHAFT = ((125.0, 5.0, 80.0), (117.0, 2.0, 220.0))  # proximal and distal axis points
SHAFT_RADIUS = 15.0
