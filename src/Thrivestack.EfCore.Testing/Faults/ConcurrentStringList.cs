using System.Collections;

namespace Thrivestack.EfCore.Testing.Faults;

/// <summary>An <see cref="IList{T}"/> of strings behind a lock; enumeration walks a snapshot.</summary>
internal sealed class ConcurrentStringList : IList<string>
{
    private readonly Lock gate = new();
    private readonly List<string> items = [];

    public int Count { get { lock (gate) { return items.Count; } } }

    public bool IsReadOnly => false;

    public string this[int index]
    {
        get { lock (gate) { return items[index]; } }
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            lock (gate) { items[index] = value; }
        }
    }

    public void Add(string item)
    {
        ArgumentNullException.ThrowIfNull(item);
        lock (gate) { items.Add(item); }
    }

    public void Insert(int index, string item)
    {
        ArgumentNullException.ThrowIfNull(item);
        lock (gate) { items.Insert(index, item); }
    }

    public void Clear() { lock (gate) { items.Clear(); } }

    public bool Contains(string item) { lock (gate) { return items.Contains(item); } }

    public int IndexOf(string item) { lock (gate) { return items.IndexOf(item); } }

    public bool Remove(string item) { lock (gate) { return items.Remove(item); } }

    public void RemoveAt(int index) { lock (gate) { items.RemoveAt(index); } }

    public void CopyTo(string[] array, int arrayIndex) { lock (gate) { items.CopyTo(array, arrayIndex); } }

    public string[] Snapshot() { lock (gate) { return [.. items]; } }

    public IEnumerator<string> GetEnumerator() => ((IEnumerable<string>)Snapshot()).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
