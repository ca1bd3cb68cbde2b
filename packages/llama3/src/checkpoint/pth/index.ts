/**
 * Reading Meta's `.pth` checkpoints (`torch.save` zips of a state dict) without Python and without ever
 * executing the pickle.
 * @module
 */
export { PthError, ZipError } from './errors.js';
export { openPth, PthFile, type PthTensorInfo } from './pth-file.js';
export { ALLOWED_GLOBALS } from './torch-globals.js';
export { ZipArchive, type ZipEntry } from './zip.js';
