"""The public batch functions, one per model: each is `run_batch` with that model's
task and documented options."""

from ._run import run_batch


def find_flares_batch(inputs, *, client=None, n_workers=None, output=None, resume=False,
                      overwrite=False, progress=False, chunk_size=None, checkpoint=60.0,
                      **options):
    """Find flares in many light curves: one table, every input accounted for.

    Parameters
    ----------
    inputs : str, path, `lightkurve.LightCurve` or iterable of them
        Light curve files (anything `lightkurve.read` reads, or ECSV/CSV light curves),
        glob patterns, ``'@list.txt'`` files of paths (see `expand_inputs`), or
        light curve objects (processed where the work runs; paths are cheaper to send
        to a cluster than objects).
    client : `dask.distributed.Client`, str or None, optional
        A client, or a scheduler address (``'tcp://host:8786'``) to connect to; None
        runs in this process unless ``n_workers`` is given.
    n_workers : int, optional
        Start a `~dask.distributed.LocalCluster` of this many worker processes, one
        thread each, for this run.
    output : str or path, optional
        Write the table here (format from the extension; ``.ecsv`` is recommended),
        atomically, at the end and every ``checkpoint`` seconds.
    resume : bool, optional
        Continue a run: keep the ``ok``/``empty`` rows of an existing ``output`` and
        process only the other inputs. The model options must be the same.
    overwrite : bool, optional
        Replace an existing ``output`` (otherwise an existing file is an error unless
        ``resume``).
    progress : bool, optional
        Show a tqdm progress bar (on a terminal).
    chunk_size : int, optional
        Inputs per Dask task (default: about a quarter of an even share per worker, at
        most 16).
    checkpoint : float or None, optional
        Seconds between intermediate writes of ``output`` (None: only at the end).
    **options
        Passed to `~astroml_affiliated.flares.find_flares`: ``threshold``, ``model``,
        ``device``, ``quality_bitmask``.

    Returns
    -------
    `~astropy.table.QTable`
        The columns of `~astroml_affiliated.flares.FlareTable` plus ``input``,
        ``status`` (``'ok'``: one row per flare; ``'empty'``: one row for a light curve
        without flares; ``'error'``: one row with the message in ``error``),
        ``target`` (TIC id or ``OBJECT``) and ``sector``. Rows follow the order of the
        inputs. ``meta`` holds the model's ``meta`` items common to every light curve
        and ``meta['batch']`` (task, options, counts, whether the run is complete).

    Raises
    ------
    InputError
        Bad arguments, patterns that match nothing, an output that exists (without
        ``resume`` or ``overwrite``), or one that cannot be resumed.
    BatchInterrupted
        The run was interrupted (Ctrl-C); what was done is in ``output``.
    WeightsError, DeviceError
        The model's weights or the device are not available: these stop the run.
    """
    return run_batch("flares", inputs, client=client, n_workers=n_workers, output=output,
                     resume=resume, overwrite=overwrite, progress=progress,
                     chunk_size=chunk_size, checkpoint=checkpoint, **options)


def estimate_parameters_batch(inputs, *, client=None, n_workers=None, output=None,
                              resume=False, overwrite=False, progress=False,
                              chunk_size=None, checkpoint=60.0, **options):
    """Stellar labels of many spectra: one table, every input accounted for.

    Parameters are as for `find_flares_batch`; ``inputs`` are spectrum files (anything
    specutils reads; FITS tables it cannot identify are read as ``tabular-fits``) or
    spectrum objects, and ``options`` go to
    `~astroml_affiliated.spectra.estimate_parameters` (``model``, ``device``,
    ``min_good_fraction``, ``batch_size``). The spectra of a chunk are predicted in one
    call; a chunk with a bad spectrum falls back to one call per input.

    ``photometry=`` a table (or the path of one) with a ``file`` column and the
    magnitudes of each input file's star, matched by file name (see
    `read_photometry`), runs the photometry model (``'gaiaxp-labels-phot'``) instead;
    every input must then be a file with one spectrum and a row in the table.

    Returns
    -------
    `~astropy.table.QTable`
        The columns of `~astroml_affiliated.spectra.estimate_parameters` plus ``input``,
        ``status``, ``error`` and ``spectrum_index`` (the row of the spectrum within its
        file, for files holding several).
    """
    return run_batch("spectra", inputs, client=client, n_workers=n_workers, output=output,
                     resume=resume, overwrite=overwrite, progress=progress,
                     chunk_size=chunk_size, checkpoint=checkpoint, **options)


def difference_batch(pairs, *, client=None, n_workers=None, output=None, resume=False,
                     overwrite=False, progress=False, chunk_size=None, checkpoint=60.0,
                     outdir=None, threshold=5, **options):
    """Difference many image pairs and find their transients: one table, every pair
    accounted for.

    Each pair is read with `~astropy.nddata.CCDData.read` (see `read_image`),
    differenced with `~astroml_affiliated.imagediff.difference`, its difference image
    written to ``outdir`` (atomically) and its transients found with
    `~astroml_affiliated.imagediff.find_transients`.

    Parameters
    ----------
    pairs : str, path or iterable of (science, reference)
        A text file with two paths per line (science first), or a list of pairs of
        paths or `~astropy.nddata.CCDData` objects (see `expand_pairs`).
    outdir : str or path, optional
        Directory for the difference images (created if needed), one FITS file per pair
        named ``<science>-minus-<reference>.fits`` after the two files (with ``MASK``
        and ``UNCERT`` extensions); its path is in the ``diff_file`` column. None: no
        image is written (in-memory pairs never write one).
    threshold : float, optional
        Detection threshold of `~astroml_affiliated.imagediff.find_transients` (S/N,
        default 5).
    client, n_workers, output, resume, overwrite, progress, chunk_size, checkpoint
        As for `find_flares_batch`. ``resume`` skips the pairs (science and reference
        paths) already in ``output``, unless their difference image has been deleted.
    **options
        ``unit`` (the unit of images whose header has no ``BUNIT``), and for
        `~astroml_affiliated.imagediff.difference`: ``model``, ``device``, ``align``,
        ``saturation``, ``gain``.

    Returns
    -------
    `~astropy.table.QTable`
        ``input`` (``'science - reference'``), ``status`` (``'ok'``: one row per
        transient; ``'empty'``: one row for a pair without transients; ``'error'``: one
        row with the message in ``error``), ``science``, ``reference``, ``diff_file``,
        then the columns of `~astroml_affiliated.imagediff.find_transients` (its
        ``sky`` column as ``ra`` and ``dec`` in degrees, ICRS). Rows follow the order
        of the pairs; ``meta['batch']`` as for `find_flares_batch`.

    Raises
    ------
    InputError
        Bad arguments, a file of pairs that cannot be read or has a line without two
        paths, two pairs whose difference images would have the same name, an output
        that exists (without ``resume`` or ``overwrite``).
    BatchInterrupted
        The run was interrupted (Ctrl-C); what was done is in ``output``.

    Examples
    --------
    >>> from astroml_affiliated.batch import difference_batch
    >>> from astroml_affiliated.imagediff.demo import synthetic_pair
    >>> science, reference, _ = synthetic_pair(shape=(128, 128), n_stars=40, seed=20)
    >>> table = difference_batch([(science, reference)], device="cpu")
    >>> [str(s) for s in table["status"]], bool(abs(table["x"][0] - 63.5) < 1.5)
    (['ok'], True)
    """
    if outdir is not None:
        options["outdir"] = outdir
    return run_batch("diff", pairs, client=client, n_workers=n_workers, output=output,
                     resume=resume, overwrite=overwrite, progress=progress,
                     chunk_size=chunk_size, checkpoint=checkpoint, threshold=threshold,
                     **options)
