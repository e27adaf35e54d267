"""`superres`: an MLP that super-resolves images from 3x3 low-resolution neighbourhoods."""
