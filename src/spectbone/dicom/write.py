"""Write a whole-body study as one NM Image Storage object: two frames (ANT, POST), uint16 counts.

The object follows the NM Image IOD the way a dual-head camera writes a whole-body sweep:
multi-frame, Frame Increment Pointer -> Energy Window Vector and Detector Vector (as the NM
Multi-frame module requires for WHOLE BODY images), Detector Vector [1, 2], Number of Detectors 2,
one Detector Information Sequence item per head carrying its View Code Sequence (CID 26 Nuclear
Medicine Projections: SCT 399321004 anterior projection, 399001007 posterior projection), patient
supine, head first (CIDs 19-21), Image Type ORIGINAL\\PRIMARY\\WHOLE BODY\\EMISSION, explicit VR little
endian. `dciodvfy` (dicom3tools) reports no error on it (tests/test_denoise.py). Identity fields are fake but shaped like real PHI (names, MRN, dates), so the
conversion stage has something real to anonymise. UIDs are derived from caller-given entropy, so
the same seed writes byte-identical files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

NM_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.20"
PHANTOM_MODEL_NAME = "spectbone whole-body bone phantom"  # marks the files the public demo key may name
VIEW_CODES = {"ANT": ("399321004", "anterior projection"), "POST": ("399001007", "posterior projection")}
FAMILY = ["DOE", "ROE", "SMITH", "JOHNSON", "GARCIA", "MILLER", "DAVIS", "MARTINEZ", "LOPEZ", "WILSON",
          "TAYLOR", "MOORE", "WHITE", "HARRIS", "CLARK", "LEWIS", "WALKER", "YOUNG", "KING", "WRIGHT",
          "CHEN", "WANG", "LI", "ZHANG", "LIU", "YANG", "HUANG", "ZHAO", "WU", "ZHOU"]
GIVEN = {"F": ["JANE", "MARY", "ANNA", "LINDA", "SUSAN", "KAREN", "LI NA", "XIU YING", "FANG", "MEI", "ROSA",
               "HELEN"],
         "M": ["JOHN", "JAMES", "ROBERT", "MICHAEL", "DAVID", "WEI", "JUN", "MING", "HAO", "JOSE", "PETER",
               "THOMAS"]}


@dataclass
class Identity:
    """Fake, PHI-shaped identity of one synthetic patient and study."""

    patient_name: str
    patient_id: str
    birth_date: str  # YYYYMMDD
    sex: str
    study_date: str  # YYYYMMDD
    study_time: str  # HHMMSS
    accession: str
    age_years: int
    weight_kg: float


def fake_identity(rng: np.random.Generator, sex: str, height_cm: float, habitus: float) -> Identity:
    """Draw a fake patient: family^given^middle-initial name, MRN + 7 digits, ages 35..89."""
    family = FAMILY[rng.integers(len(FAMILY))]
    given = GIVEN[sex][rng.integers(len(GIVEN[sex]))]
    initial = chr(ord("A") + int(rng.integers(26)))
    study = date(2015, 1, 1) + timedelta(days=int(rng.integers(0, 8 * 365)))
    age = int(rng.integers(35, 90))
    birth = study - timedelta(days=int(age * 365.25 + rng.integers(0, 365)))
    hh, mm, ss = int(rng.integers(8, 17)), int(rng.integers(60)), int(rng.integers(60))
    bmi = 23.0 * habitus**2
    return Identity(
        patient_name=f"{family}^{given}^{initial}",
        patient_id=f"MRN{int(rng.integers(10**6, 10**7)):07d}",
        birth_date=birth.strftime("%Y%m%d"),
        sex=sex,
        study_date=study.strftime("%Y%m%d"),
        study_time=f"{hh:02d}{mm:02d}{ss:02d}",
        accession=f"A{int(rng.integers(10**7, 10**8))}",
        age_years=int((study - birth).days // 365.25),
        weight_kg=round(float(bmi * (height_cm / 100.0) ** 2), 1),
    )


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def build_nm_dataset(frames: dict[str, np.ndarray], identity: Identity, uid_entropy: list, *,
                     pixel_mm: float = 2.26, height_cm: float | None = None,
                     scan_minutes: float = 20.0) -> Dataset:
    """An NM Image Storage dataset with one frame per view, in the order ANT, POST.

    `uid_entropy` (e.g. ``["spectbone", seed, "study_0001"]``) makes every UID reproducible.
    """
    views = [v for v in ("ANT", "POST") if v in frames]
    if not views:
        raise ValueError("no ANT/POST frames given")
    stack = np.stack([np.asarray(frames[v]) for v in views])
    if stack.min() < 0 or stack.max() > np.iinfo(np.uint16).max:
        raise ValueError("counts outside the uint16 range")
    stack = stack.astype(np.uint16)
    n, rows, cols = stack.shape
    ent = [str(e) for e in uid_entropy]
    study_uid = generate_uid(entropy_srcs=ent + ["study"])
    series_uid = generate_uid(entropy_srcs=ent + ["series"])
    sop_uid = generate_uid(entropy_srcs=ent + ["instance"])
    frame_uid = generate_uid(entropy_srcs=ent + ["frame-of-reference"])

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = NM_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "WHOLE BODY", "EMISSION"]
    ds.SOPClassUID = NM_IMAGE_STORAGE
    ds.SOPInstanceUID = sop_uid
    for prefix in ("Study", "Series", "Acquisition", "Content"):
        setattr(ds, f"{prefix}Date", identity.study_date)
        setattr(ds, f"{prefix}Time", identity.study_time)
    ds.AccessionNumber = identity.accession
    ds.Modality = "NM"
    ds.Manufacturer = "spectbone"
    ds.InstitutionName = "Synthetic Phantom Hospital"
    ds.ReferringPhysicianName = ""
    ds.StationName = "PHANTOM"
    ds.StudyDescription = "Whole Body Bone"
    ds.SeriesDescription = "WB ANT/POST"
    ds.ManufacturerModelName = PHANTOM_MODEL_NAME
    ds.PatientName = identity.patient_name
    ds.PatientID = identity.patient_id
    ds.PatientBirthDate = identity.birth_date
    ds.PatientSex = identity.sex
    ds.PatientAge = f"{identity.age_years:03d}Y"
    if height_cm is not None:
        ds.PatientSize = f"{height_cm / 100.0:.2f}"
    ds.PatientWeight = f"{identity.weight_kg:.1f}"
    ds.BodyPartExamined = "WHOLEBODY"
    ds.SoftwareVersions = "spectbone"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = frame_uid
    ds.PositionReferenceIndicator = ""  # Type 2: no anatomical reference point
    orientation = _code("102538003", "SCT", "recumbent")
    orientation.PatientOrientationModifierCodeSequence = Sequence([_code("40199007", "SCT", "supine")])
    ds.PatientOrientationCodeSequence = Sequence([orientation])
    ds.PatientGantryRelationshipCodeSequence = Sequence([_code("102540008", "SCT", "headfirst")])
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.PatientOrientation = ""
    ds.ImageComments = "Synthetic phantom study (spectbone)"

    # acquisition (whole-body sweep)
    fov_cm = rows * pixel_mm / 10.0
    ds.ScanVelocity = f"{fov_cm / scan_minutes:.2f}"  # cm/min
    ds.WholeBodyTechnique = "1PS"  # one pass (both heads at once)
    ds.ScanLength = int(round(rows * pixel_mm))  # mm
    ds.ActualFrameDuration = int(round(scan_minutes * 60_000))
    ds.CountsAccumulated = int(stack.sum(dtype=np.int64))

    pharm = Dataset()
    pharm.Radiopharmaceutical = "Tc-99m MDP"
    pharm.RadionuclideTotalDose = "740"
    injected_hour = max(int(identity.study_time[:2]) - 3, 0)  # images about 3 h after injection
    pharm.RadiopharmaceuticalStartTime = f"{injected_hour:02d}{identity.study_time[2:]}"
    pharm.RadionuclideCodeSequence = Sequence([_code("72454006", "SCT", "^99m^Technetium")])
    ds.RadiopharmaceuticalInformationSequence = Sequence([pharm])

    win = Dataset()
    rng_item = Dataset()
    rng_item.EnergyWindowLowerLimit = "126"
    rng_item.EnergyWindowUpperLimit = "154"
    win.EnergyWindowRangeSequence = Sequence([rng_item])
    win.EnergyWindowName = "TC99M"
    ds.EnergyWindowInformationSequence = Sequence([win])
    ds.NumberOfEnergyWindows = 1
    ds.EnergyWindowVector = [1] * n

    detectors = []
    for v in views:
        det = Dataset()
        det.CollimatorGridName = "LEHR"
        det.CollimatorType = "PARA"
        det.ZoomFactor = ["1", "1"]
        det.ViewCodeSequence = Sequence([_code(VIEW_CODES[v][0], "SCT", VIEW_CODES[v][1])])
        det.ImagePositionPatient = None  # Type 2: unknown for a planar sweep
        det.ImageOrientationPatient = None
        detectors.append(det)
    ds.DetectorInformationSequence = Sequence(detectors)
    ds.NumberOfDetectors = n
    ds.DetectorVector = list(range(1, n + 1))
    ds.NumberOfFrames = n
    ds.FrameIncrementPointer = [(0x0054, 0x0010), (0x0054, 0x0020)]  # Energy Window Vector, Detector Vector

    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = cols
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelSpacing = [f"{pixel_mm:g}", f"{pixel_mm:g}"]
    ds.PixelData = stack.astype("<u2").tobytes()
    return ds


def write_nm_study(path: str | os.PathLike, frames: dict[str, np.ndarray], identity: Identity,
                   uid_entropy: list, **kwargs) -> Dataset:
    """Build (see `build_nm_dataset`) and save as a DICOM Part 10 file; returns the dataset."""
    ds = build_nm_dataset(frames, identity, uid_entropy, **kwargs)
    ds.save_as(path, enforce_file_format=True)
    return ds
