using System.Collections;

namespace Thrivestack.EfCore.Testing.Faults;

/// <summary>An <see cref="IList{T}"/> of strings behind a lock; enumeration walks a snapshot.</summary>
internal sealed class ConcurrentStringList : IList<string>
{
    private readonly Lock _gate = new();
    private readonly List<string> _items = [];

    public int Count { get { lock (_gate) { return _items.Count; } } }

    public bool IsReadOnly => false;

    public string this[int index]
    {
        get { lock (_gate) { return _items[index]; } }
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            lock (_gate) { _items[index] = value; }
        }
    }

    public void Add(string item)
    {
        ArgumentNullException.ThrowIfNull(item);
        lock (_gate) { _items.Add(item); }
    }

    public void Insert(int index, string item)
    {
        ArgumentNullException.ThrowIfNull(item);
        lock (_gate) { _items.Insert(index, item); }
    }

    public void Clear() { lock (_gate) { _items.Clear(); } }

    public bool Contains(string item) { lock (_gate) { return _items.Contains(item); } }

    public int IndexOf(string item) { lock (_gate) { return _items.IndexOf(item); } }

    public bool Remove(string item) { lock (_gate) { return _items.Remove(item); } }

    public void RemoveAt(int index) { lock (_gate) { _items.RemoveAt(index); } }

    public void CopyTo(string[] array, int arrayIndex) { lock (_gate) { _items.CopyTo(array, arrayIndex); } }

    public string[] Snapshot() { lock (_gate) { return [.. _items]; } }

    public IEnumerator<string> GetEnumerator() => ((IEnumerable<string>)Snapshot()).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
