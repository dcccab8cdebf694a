// Package filewatch follows one file and reports each new content.
//
// It is the mechanism behind config.Watch and migrate.Watch (through config.FileSource), which
// parse and apply what it reports. Its guarantees:
//
//   - The file's directory is watched, not the file, so a file replaced
//     by a rename (editors, configuration tools) or by Kubernetes' ..data
//     symlink swap keeps being followed. Only events for the file's name
//     and for names beginning with ".." count; other files of the
//     directory are ignored.
//   - The file is read once it has been quiet for the debounce period, so
//     a write made in several steps is read once, whole.
//   - Content equal to the content last read (by sha256) is not reported.
//   - A missing file is being replaced: it is not an error, and the event
//     that brings it back makes it read again.
//   - The callbacks run on the watcher's goroutine, one call at a time;
//     none runs once Close has returned or Done is closed.
//   - The watch is established before the file is first read, so no
//     change falls between the first content and the first event.
package filewatch
