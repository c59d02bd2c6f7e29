"""The camera frame every view is drawn on: a 1024 x 256 whole-body sweep at 2.26 mm, ANT and POST."""

ROWS, COLS = 1024, 256
PIXEL_MM = 2.26
VIEWS = ("ANT", "POST")
REF_HEIGHT_CM = 170.0  # the reference patient the anatomy is laid out for
