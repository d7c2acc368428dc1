// Package fsutil holds the file-system steps the rest of the module shares:
// replacing a small file so that a crash leaves either its old or its new
// contents, never a torn one.
package fsutil
