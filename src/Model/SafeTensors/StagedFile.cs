namespace Scst.Model.SafeTensors;

/// <summary>
/// A file written in full beside its target (a hidden temp file, flushed to disk) and put in place only by
/// <see cref="Commit"/>, a rename. Staging every file of a group first (a checkpoint, its .sha256, its pointers) and
/// renaming afterwards means a full disk fails before any target changed: renames need no space.
/// Disposing an uncommitted one deletes its temp file.
/// </summary>
public sealed class StagedFile : IDisposable
{
    readonly string _tmp;
    bool _committed;

    public string Path { get; }

    StagedFile(string path, string tmp) { Path = path; _tmp = tmp; }

    public static StagedFile Write(string path, byte[] bytes) => Write(path, fs => fs.Write(bytes));

    /// <summary>Writes the temp file; an error names <paramref name="path"/> (keeping the OS error's type and errno) and leaves no temp file.</summary>
    public static StagedFile Write(string path, Action<FileStream> write)
    {
        var full = System.IO.Path.GetFullPath(path);
        var dir = System.IO.Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        var staged = new StagedFile(full, System.IO.Path.Combine(dir, $".{System.IO.Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp"));
        try
        {
            using (var fs = new FileStream(staged._tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            return staged;
        }
        catch (IOException e) when (e.GetType() == typeof(IOException))
        {
            staged.Dispose();
            throw NotWritten(full, e);
        }
        catch
        {
            staged.Dispose();
            throw;
        }
    }

    public void Commit()
    {
        try { File.Move(_tmp, Path, overwrite: true); }
        catch (IOException e) when (e.GetType() == typeof(IOException)) { throw NotWritten(Path, e); }
        _committed = true;
    }

    // Same type and HResult (errno), so callers still tell a full disk from other failures.
    // The OS message names the temp file ("No space left on device : '/x/.f.123.tmp'"): keep only what went wrong.
    static IOException NotWritten(string path, IOException e)
    {
        var reason = e.Message;
        var at = reason.IndexOf(" : '", StringComparison.Ordinal);
        return new($"{path}: not written, the previous file is unchanged ({(at > 0 ? reason[..at] : reason)})", e) { HResult = e.HResult };
    }

    public void Dispose()
    {
        if (_committed) return;
        try { File.Delete(_tmp); }
        catch (IOException) { } // the error that got us here matters more than a leftover temp file
        catch (UnauthorizedAccessException) { }
    }
}
