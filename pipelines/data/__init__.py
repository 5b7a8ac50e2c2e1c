"""From scanner files to training slices. Takes a manifest of CT/MRI volumes (NIfTI or DICOM);
gives a content-hashed dataset of Parquet slice shards: `manifest` reads the CSV, `volumes`
reads and resamples images, `registration` aligns the MRI to the CT, `intensity` maps HU and
MRI values to [-1, 1], `shards` defines the Parquet layout, `ingest` runs it all, `dataset`
reads it back (index, row groups, unpaired training batches) and `locations` handles URIs."""
