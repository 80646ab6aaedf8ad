// Package recognize finds licence plates in still images and reads them.
//
// It owns plate localisation, OCR, the ONNX Runtime sessions that run the
// PP-OCRv4 detector and recogniser, region plate formats, and the Tracker
// that groups reads of consecutive frames into vehicle passes.
//
// Pipeline, per image: the DB text detector runs on a copy resized so its
// long side is Config.DetMaxSide (a multiple of 32); its probability map is
// thresholded, every blob becomes a rotated rectangle, grown a little
// ("unclipped") and mapped back to input pixels. Each rectangle is cut out
// with a perspective warp, scaled to height 48 and read by the CTC
// recogniser, whose output is restricted to A-Z and 0-9 (lower-case and
// full-width forms fold into their upper-case ASCII class). Texts of boxes
// that sit side by side on one line, or as two stacked lines, are also
// joined, since the detector often splits a plate ("ABC 1234"). Every text
// is scored as mean character probability times how plausible it is as a
// plate of Config.Region; plates come back best first.
//
// The recogniser is fed BGR planes, as PaddleOCR does (the model was trained
// on OpenCV's BGR decodes): RGB read 4% fewer plates of the us set.
//
// Caveats:
//   - ONNX Runtime is a process-wide environment: the first New loads the
//     shared library named by Config.LibPath and it stays loaded until the
//     process exits; a later New with another LibPath fails.
//   - A Recognizer is safe for use by one goroutine at a time; concurrent
//     calls are serialised by a mutex. Run one Recognizer per core for
//     parallelism.
//   - The package reads the model files in New and nothing else: it never
//     touches disk or network afterwards.
//   - Region fixes only swap look-alike characters (O/0, I/1, B/8, S/5, Z/2,
//     G/6) where a region's format demands a letter or a digit; they never
//     add or drop a character.
package recognize
