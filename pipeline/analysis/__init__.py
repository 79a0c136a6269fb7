"""Pure analysis code both sides use (numpy, pyarrow, scipy; never TensorFlow): the select & match
engine, the view transforms, and the trust measures of projections."""
