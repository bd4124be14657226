//! Priorities written as Python writes them: a priority beside the item, floats included.
//!
//! Python puts `(priority, item)` tuples into a `PriorityQueue`, often with float priorities,
//! and compares only the priority when the items differ in it. Rust's `f64` is not `Ord` (NaN
//! compares with nothing), so such tuples do not fit a queue that needs `T: Ord`.
//! [`Prioritized`] pairs a [`Priority`] (any integer, `bool`, `char`, string, `Duration`,
//! `f32`/`f64`, [`Reverse`] of one, or a tuple of them) with an item that needs no order at all,
//! and refuses a NaN priority when it is made, so that every priority in a queue has its place
//! in one total order.

use std::cmp::{Ordering, Reverse};
use std::fmt;
use std::time::Duration;

use conveyor_core::error::debug_with_message;
use conveyor_core::PutError;

/// A priority: values with a total order, smallest first. Floats are priorities too: their
/// NaN, which has no place in any order, is refused by [`Prioritized::new`].
///
/// Implemented for the integers, `bool`, `char`, `String`, `&str`, `()`, [`Duration`], `f32`,
/// `f64`, [`Reverse`] of a priority (largest first) and tuples of up to four priorities
/// (compared element by element, as Python compares tuples). For a type of your own that is
/// `Ord`, the implementation is one line:
///
/// ```
/// use std::cmp::Ordering;
/// use conveyor_thread::Priority;
///
/// #[derive(PartialEq, Eq, PartialOrd, Ord)]
/// enum Urgency {
///     Now,
///     Soon,
///     Someday,
/// }
///
/// impl Priority for Urgency {
///     fn compare(&self, other: &Self) -> Ordering {
///         self.cmp(other)
///     }
/// }
/// assert_eq!(Urgency::Now.compare(&Urgency::Someday), Ordering::Less);
/// # let _ = Urgency::Soon;
/// ```
pub trait Priority {
    /// Compares two priorities (`Less`: `self` comes out first). It must be a total order over
    /// the values for which [`is_nan`](Priority::is_nan) is false.
    fn compare(&self, other: &Self) -> Ordering;

    /// Whether this value has no place in the order (a float NaN, or a tuple holding one).
    /// Such a priority is refused by [`Prioritized::new`]. The default is `false`.
    fn is_nan(&self) -> bool {
        false
    }
}

macro_rules! ord_priority {
    ($($t:ty),* $(,)?) => {
        $(
            impl Priority for $t {
                #[inline]
                fn compare(&self, other: &Self) -> Ordering {
                    Ord::cmp(self, other)
                }
            }
        )*
    };
}

ord_priority!(
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    bool,
    char,
    String,
    &str,
    (),
    Duration,
);

macro_rules! float_priority {
    ($($t:ty),*) => {
        $(
            impl Priority for $t {
                /// The numeric order, as Python's `<` (so `-0.0` and `0.0` are equal and come
                /// out in the order they were put). For NaN, which a [`Prioritized`] never
                /// holds, IEEE 754's `totalOrder` keeps the comparison total all the same.
                #[inline]
                fn compare(&self, other: &Self) -> Ordering {
                    self.partial_cmp(other)
                        .unwrap_or_else(|| self.total_cmp(other))
                }

                #[inline]
                fn is_nan(&self) -> bool {
                    <$t>::is_nan(*self)
                }
            }
        )*
    };
}

float_priority!(f32, f64);

impl<P: Priority> Priority for Reverse<P> {
    #[inline]
    fn compare(&self, other: &Self) -> Ordering {
        other.0.compare(&self.0)
    }

    #[inline]
    fn is_nan(&self) -> bool {
        self.0.is_nan()
    }
}

macro_rules! tuple_priority {
    ($(($($name:ident $idx:tt),+))*) => {
        $(
            impl<$($name: Priority),+> Priority for ($($name,)+) {
                #[inline]
                fn compare(&self, other: &Self) -> Ordering {
                    Ordering::Equal
                        $(.then_with(|| self.$idx.compare(&other.$idx)))+
                }

                #[inline]
                fn is_nan(&self) -> bool {
                    false $(|| self.$idx.is_nan())+
                }
            }
        )*
    };
}

tuple_priority! {
    (A 0)
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, D 3)
}

/// An item with a priority beside it: Python's `(priority, item)` tuple for a
/// [`PriorityQueue`](crate::PriorityQueue).
///
/// It is ordered by its priority alone (the item needs no order, and two entries of equal
/// priority are equal, so the queue hands them out first-in, first-out), and it never holds a
/// NaN priority: [`new`](Prioritized::new) refuses one with a [`NanPriority`] error that hands
/// both back. [`PriorityQueue::put_with_priority`](crate::PriorityQueue::put_with_priority)
/// makes one and puts it; build one yourself for `try_put` and `put_timeout`.
///
/// ```
/// use conveyor_thread::{Prioritized, PriorityQueue};
///
/// let q = PriorityQueue::bounded(8);
/// q.try_put(Prioritized::new(0.5, "urgent")?)?;
/// let got = q.get()?;
/// assert_eq!((got.priority(), got.item()), (&0.5, &"urgent"));
/// assert_eq!(got.into_parts(), (0.5, "urgent"));
///
/// let refused = Prioritized::new(f64::NAN, "lost?").unwrap_err();
/// assert_eq!(refused.into_parts().1, "lost?"); // not lost: handed back
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Prioritized<P, T> {
    priority: P,
    item: T,
}

impl<P: Priority, T> Prioritized<P, T> {
    /// `item` with `priority`; a NaN priority (see [`Priority::is_nan`]) is refused, and the
    /// error hands both back.
    pub fn new(priority: P, item: T) -> Result<Self, NanPriority<P, T>> {
        if priority.is_nan() {
            return Err(NanPriority { priority, item });
        }
        Ok(Prioritized { priority, item })
    }
}

impl<P, T> Prioritized<P, T> {
    /// The priority.
    pub fn priority(&self) -> &P {
        &self.priority
    }

    /// The item.
    pub fn item(&self) -> &T {
        &self.item
    }

    /// The item, without its priority.
    pub fn into_inner(self) -> T {
        self.item
    }

    /// The priority and the item: the tuple Python's `get` returns.
    pub fn into_parts(self) -> (P, T) {
        (self.priority, self.item)
    }
}

impl<P, T> From<Prioritized<P, T>> for (P, T) {
    fn from(p: Prioritized<P, T>) -> (P, T) {
        p.into_parts()
    }
}

impl<P: fmt::Debug, T: fmt::Debug> fmt::Debug for Prioritized<P, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prioritized")
            .field("priority", &self.priority)
            .field("item", &self.item)
            .finish()
    }
}

impl<P: Priority, T> PartialEq for Prioritized<P, T> {
    /// Whether the two priorities are equal; the items are not compared.
    fn eq(&self, other: &Self) -> bool {
        self.priority.compare(&other.priority) == Ordering::Equal
    }
}

impl<P: Priority, T> Eq for Prioritized<P, T> {}

impl<P: Priority, T> PartialOrd for Prioritized<P, T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<P: Priority, T> Ord for Prioritized<P, T> {
    /// By priority alone.
    fn cmp(&self, other: &Self) -> Ordering {
        self.priority.compare(&other.priority)
    }
}

/// A NaN priority was refused; the priority and the item are handed back.
///
/// ```
/// use conveyor_thread::Prioritized;
///
/// let err = Prioritized::new((1, f32::NAN), 'x').unwrap_err();
/// assert!(err.to_string().contains("NaN"));
/// assert_eq!(err.into_inner(), 'x');
/// ```
pub struct NanPriority<P, T> {
    priority: P,
    item: T,
}

impl<P, T> NanPriority<P, T> {
    /// The item that was not queued.
    pub fn into_inner(self) -> T {
        self.item
    }

    /// The refused priority and the item.
    pub fn into_parts(self) -> (P, T) {
        (self.priority, self.item)
    }

    /// The refused priority.
    pub fn priority(&self) -> &P {
        &self.priority
    }
}

impl<P, T> fmt::Display for NanPriority<P, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "the priority is NaN, which has no place in an order: the item was not queued \
             (check how the priority was computed, e.g. 0.0 / 0.0)",
        )
    }
}

impl<P, T> fmt::Debug for NanPriority<P, T> {
    /// The message, then the type (the priority and the item need not be `Debug`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_with_message(f, self, |f| f.write_str("NanPriority { .. }"))
    }
}

impl<P, T> std::error::Error for NanPriority<P, T> {}

/// Why [`PriorityQueue::put_with_priority`](crate::PriorityQueue::put_with_priority) failed:
/// a NaN priority, or the put itself (closed, full). The priority and the item are handed back
/// in every case.
///
/// ```
/// use conveyor_thread::PriorityQueue;
///
/// let q = PriorityQueue::unbounded();
/// let err = q.put_with_priority(f64::NAN, "job").unwrap_err();
/// assert!(err.is_nan());
/// assert_eq!(err.into_inner(), "job");
/// q.close();
/// let err = q.put_with_priority(1.0, "late").unwrap_err();
/// assert!(err.is_closed());
/// assert_eq!(err.into_parts(), (1.0, "late"));
/// ```
#[non_exhaustive]
pub enum PriorityPutError<P, T> {
    /// The priority is NaN.
    Nan(NanPriority<P, T>),
    /// The put failed (the queue is closed); see [`PutError`].
    Put(PutError<Prioritized<P, T>>),
}

impl<P, T> PriorityPutError<P, T> {
    /// Whether the priority was NaN.
    pub fn is_nan(&self) -> bool {
        matches!(self, PriorityPutError::Nan(_))
    }

    /// Whether the queue was closed.
    pub fn is_closed(&self) -> bool {
        matches!(self, PriorityPutError::Put(e) if e.is_closed())
    }

    /// The priority and the item that were not queued.
    pub fn into_parts(self) -> (P, T) {
        match self {
            PriorityPutError::Nan(e) => e.into_parts(),
            PriorityPutError::Put(e) => e.into_inner().into_parts(),
        }
    }

    /// The item that was not queued.
    pub fn into_inner(self) -> T {
        self.into_parts().1
    }
}

impl<P, T> fmt::Display for PriorityPutError<P, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PriorityPutError::Nan(e) => fmt::Display::fmt(e, f),
            PriorityPutError::Put(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl<P, T> fmt::Debug for PriorityPutError<P, T> {
    /// The message, then the variant and what it holds (the priority and the item need not be
    /// `Debug`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_with_message(f, self, |f| match self {
            PriorityPutError::Nan(e) => f.debug_tuple("Nan").field(e).finish(),
            PriorityPutError::Put(e) => f.debug_tuple("Put").field(e).finish(),
        })
    }
}

impl<P, T> std::error::Error for PriorityPutError<P, T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        None
    }
}

impl<P, T> From<NanPriority<P, T>> for PriorityPutError<P, T> {
    fn from(e: NanPriority<P, T>) -> Self {
        PriorityPutError::Nan(e)
    }
}

impl<P, T> From<PutError<Prioritized<P, T>>> for PriorityPutError<P, T> {
    fn from(e: PutError<Prioritized<P, T>>) -> Self {
        PriorityPutError::Put(e)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn floats_compare_numerically_and_refuse_nan() {
        assert_eq!(1.5f64.compare(&2.0), Ordering::Less);
        assert_eq!((-0.0f64).compare(&0.0), Ordering::Equal);
        assert_eq!(f64::NEG_INFINITY.compare(&f64::MIN), Ordering::Less);
        assert!(f64::NAN.is_nan() && Priority::is_nan(&-f64::NAN));
        assert!(!Priority::is_nan(&f64::INFINITY));
        assert!(Priority::is_nan(&(1u8, f32::NAN)));
        assert!(Priority::is_nan(&Reverse(f64::NAN)));
        assert_eq!(Reverse(1.0f64).compare(&Reverse(2.0)), Ordering::Greater);
        assert_eq!((1, 2.5f32).compare(&(1, 0.5)), Ordering::Greater);
        assert_eq!((0, 9.0f32).compare(&(1, 0.5)), Ordering::Less);
    }

    #[test]
    fn the_debug_form_of_the_errors_carries_the_message() {
        let e = Prioritized::new(f64::NAN, 1u8).unwrap_err();
        let d = format!("{e:?}");
        assert!(d.starts_with("the priority is NaN"), "{d}");
        assert!(d.ends_with(" (NanPriority { .. })"), "{d}");
        let p: PriorityPutError<f64, u8> = e.into();
        assert_eq!(format!("{p:?}"), format!("{p} (Nan(NanPriority {{ .. }}))"));
        let closed: PriorityPutError<f64, u8> =
            PutError::Closed(Prioritized::new(1.0, 2u8).unwrap()).into();
        assert_eq!(format!("{closed:?}"), format!("{closed} (Put(Closed(..)))"));
    }
}
