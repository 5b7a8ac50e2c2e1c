"""Classical metal artefact reduction, the baselines every learned model stands beside. Takes a
CT slice in HU and its metal mask; gives the LI-MAR (linear interpolation of the metal trace in
the sinogram) and NMAR (normalised by a tissue-classified prior) corrections (`mar`)."""
