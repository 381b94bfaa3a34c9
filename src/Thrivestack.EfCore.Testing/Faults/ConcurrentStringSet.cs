using System.Collections;

namespace Thrivestack.EfCore.Testing.Faults;

/// <summary>An ordinal <see cref="ISet{T}"/> of strings behind a lock; enumeration walks a snapshot.</summary>
internal sealed class ConcurrentStringSet : ISet<string>
{
    private readonly Lock gate = new();
    private readonly HashSet<string> items = new(StringComparer.Ordinal);

    public int Count { get { lock (gate) { return items.Count; } } }

    public bool IsReadOnly => false;

    public bool Add(string item)
    {
        ArgumentNullException.ThrowIfNull(item);
        lock (gate) { return items.Add(item); }
    }

    void ICollection<string>.Add(string item) => Add(item);

    public void Clear() { lock (gate) { items.Clear(); } }

    public bool Contains(string item) { lock (gate) { return items.Contains(item); } }

    public bool Remove(string item) { lock (gate) { return items.Remove(item); } }

    public void CopyTo(string[] array, int arrayIndex) { lock (gate) { items.CopyTo(array, arrayIndex); } }

    public void ExceptWith(IEnumerable<string> other) => Mutate(other, static (set, items) => set.ExceptWith(items));

    public void IntersectWith(IEnumerable<string> other) => Mutate(other, static (set, items) => set.IntersectWith(items));

    public void SymmetricExceptWith(IEnumerable<string> other) => Mutate(other, static (set, items) => set.SymmetricExceptWith(items));

    public void UnionWith(IEnumerable<string> other) => Mutate(other, static (set, items) => set.UnionWith(items));

    public bool IsProperSubsetOf(IEnumerable<string> other) => Query(other, static (set, items) => set.IsProperSubsetOf(items));

    public bool IsProperSupersetOf(IEnumerable<string> other) => Query(other, static (set, items) => set.IsProperSupersetOf(items));

    public bool IsSubsetOf(IEnumerable<string> other) => Query(other, static (set, items) => set.IsSubsetOf(items));

    public bool IsSupersetOf(IEnumerable<string> other) => Query(other, static (set, items) => set.IsSupersetOf(items));

    public bool Overlaps(IEnumerable<string> other) => Query(other, static (set, items) => set.Overlaps(items));

    public bool SetEquals(IEnumerable<string> other) => Query(other, static (set, items) => set.SetEquals(items));

    public IEnumerator<string> GetEnumerator() => ((IEnumerable<string>)Snapshot()).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    private string[] Snapshot() { lock (gate) { return [.. items]; } }

    // The other sequence is copied first so that passing this set (or a lazy query over it) cannot deadlock or throw.
    private void Mutate(IEnumerable<string> other, Action<HashSet<string>, string[]> action)
    {
        ArgumentNullException.ThrowIfNull(other);
        string[] items = [.. other];
        lock (gate) { action(this.items, items); }
    }

    private bool Query(IEnumerable<string> other, Func<HashSet<string>, string[], bool> query)
    {
        ArgumentNullException.ThrowIfNull(other);
        string[] items = [.. other];
        lock (gate) { return query(this.items, items); }
    }
}
